"""The database sign-in of the deployed containers, performed by Microsoft's real ODBC driver in the
product image and observed by a SQL login front (tests/sqlfront/).

`provision` + `deploy --image <the product image>` against the Azure stand-in; the migration job
and the container app it then holds are run with Docker exactly as deployed, except for
`replay.substitute_sql_front`: the SQL server's FQDN answered by the front, and the managed-identity
endpoint Container Apps injects served by the stand-in. What the driver presents is checked
against what Azure SQL would accept for this deployment:
- Entra (default): a token the identity endpoint issued for `https://database.windows.net/` to
  the app's user-assigned identity (the app) or to the migration identity, the server's Entra
  administrator (the job), fetched with that identity's client id; the job's `grant` init
  container signs in as the administrator and creates the app identity's contained user, and
  the app's token is not the administrator's;
- password: the job signs in as the administrator login (the password only its secret holds), its
  `grant` init container creating the app's contained user with a second generated password; the
  app signs in as that user, never as the administrator.

MLflow cannot go further than the login here (the front answers no MLflow query), so each
container is stopped once the front has seen its login (the grant, plain T-SQL, runs to its end).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests import services
from tests.integration import replay
from tests.integration.conftest import Deployment
from tests.sqlfront.front import SQL_SPN, SqlFront, sid_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LOGIN_WAIT = 120  # seconds: MLflow's start-up (imports, then the engine) comes before the login
IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


@dataclass
class Deployed:
    deployment: Deployment
    app: dict[str, Any]
    job: dict[str, Any]
    identity: dict[str, Any]            # the app's
    migration_identity: dict[str, Any]  # the job's: the SQL server's Entra administrator
    secrets: dict[str, dict[str, str]] = field(repr=False)  # by resource name; never in a report

    def run(self, which: str) -> replay.ContainerRun:
        resource = self.app if which == "app" else self.job
        make = replay.app_run if which == "app" else replay.job_run
        return make(resource, self.secrets[resource["name"]])


@pytest.fixture(scope="module")
def front(standin_session, tmp_path_factory):
    """One SQL front for the module, on every address so containers reach it at the gateway, with
    a certificate for any Azure SQL server name."""
    workdir = tmp_path_factory.mktemp("sqlfront")
    with SqlFront(host="0.0.0.0", names=("*.database.windows.net",), tenant_id=standin_session.tenant_id,
                  workdir=str(workdir)) as running:
        running.bundle = running.ca_bundle(str(workdir / "ca-certificates.crt"))
        yield running


def deploy(standin, directory, image: str, **settings: Any) -> Deployed:
    deployment = Deployment.with_image(standin, directory, image,
                                       {"storage_container_name": f"signin-{uuid.uuid4().hex[:8]}", **settings})
    app = deployment.one("Microsoft.App/containerApps")
    job = deployment.one("Microsoft.App/jobs")
    secrets = {resource["name"]: replay.list_secrets(deployment, resource) for resource in (app, job)}
    identities = {r["name"]: r for r in deployment.resources(IDENTITY_TYPE)}
    name = deployment.settings["name"]
    return Deployed(deployment, app, job, identities[f"{name}-id"], identities[f"{name}-migrate-id"], secrets)


@pytest.fixture(scope="module")
def entra(standin_session, tmp_path_factory, replay_image) -> Deployed:
    return deploy(standin_session, tmp_path_factory.mktemp("signin-entra"), replay_image)


@pytest.fixture(scope="module")
def password(standin_session, tmp_path_factory, replay_image) -> Deployed:
    return deploy(standin_session, tmp_path_factory.mktemp("signin-password"), replay_image, sql_auth="password")


def against_front(deployed: Deployed, run: replay.ContainerRun, front: SqlFront) -> replay.ContainerRun:
    standin = deployed.deployment.standin
    gateway = services.docker_gateway()
    return replay.substitute_sql_front(
        run, gateway=gateway, front_port=front.port, ca_bundle=front.bundle,
        identity_endpoint=standin.identity_http(host="0.0.0.0", url_host=gateway),
        identity_header=standin.app.tokens.identity_header)


def first_login(deployed: Deployed, which: str, front: SqlFront, engine: Any):
    """Run the deployed container against the front until the front has seen a login attempt
    finish; return (login, the container's log, the command lines of its processes then)."""
    run = against_front(deployed, deployed.run(which), front)
    front.clear()
    with replay.started(engine, run, name=f"signin-{which}") as container:
        try:
            login = front.wait_for_login(timeout=LOGIN_WAIT)
        except TimeoutError as waited:
            raise AssertionError(f"{waited}\n--- container log ---\n"
                                 f"{container.logs(tail=40).decode(errors='replace')}") from None
        processes = [row[-1] for row in container.top(ps_args="-eo pid,args")["Processes"]]
        return login, container.logs(tail=40).decode(errors="replace"), processes


@pytest.mark.parametrize("which", ["job", "app"])
def test_entra_sign_in_presents_a_database_token_of_its_identity(entra, front, replay_engine, which):
    """The app signs in with its own identity; the job (its upgrade) with the migration identity."""
    standin = entra.deployment.standin
    properties = (entra.identity if which == "app" else entra.migration_identity)["properties"]
    asked_before = len(standin.identity_requests())

    login, log, _processes = first_login(entra, which, front, replay_engine)

    assert login.outcome == "accepted", (login.outcome, login.events, log)
    # The driver fetched the token itself (FEDAUTH library 0x02, ActiveDirectoryMsi), no user name.
    assert (login.fedauth_library, login.user, login.password) == (0x02, "", ""), login.events
    claims = standin.app.tokens.verify(login.token or "")
    assert claims is not None, "no token, or one the identity endpoint did not issue"
    assert claims["aud"] == SQL_SPN == "https://database.windows.net/"
    assert (claims["appid"], claims["oid"]) == (properties["clientId"], properties["principalId"])
    assert login.database == entra.deployment.settings.get("sql_database_name", "mlflow")

    # How it got it: the request Container Apps' identity endpoint received.
    [asked] = [r for r in standin.identity_requests()[asked_before:] if r["via"] == "http"]
    assert asked["query"]["resource"] == SQL_SPN
    assert asked["query"]["client_id"] == properties["clientId"]
    assert (asked["header"], asked["status"]) == ("right", 200)


def test_the_jobs_grant_creates_the_apps_user_as_the_administrator_and_the_app_is_not_it(entra, front, replay_engine):
    """(Before the password tests: their fixture resets the stand-in, and this one's identities with it.)

    The job's `grant` init container, run as deployed, against a front where only the migration
    identity (the server's Entra administrator) may create users: it presents that identity's
    token and sends CREATE USER for the app identity's name with the app identity's SID and the
    two role additions. The app's own sign-in then presents the app identity's token, which the
    front does not take for the administrator's."""
    standin = entra.deployment.standin
    admin, app = entra.migration_identity["properties"], entra.identity["properties"]
    front.clear()
    front.accept_batches, front.claims = True, standin.app.tokens.verify
    front.admin = {"oid": admin["principalId"], "appid": admin["clientId"]}
    try:
        run = against_front(entra, replay.job_init_run(entra.job, entra.secrets[entra.job["name"]], "mlflow-grant"),
                            front)
        assert (run.command, run.args) == (["python", "-m", "mlflow_aca_sql"], ["grant"])
        asked_before = len(standin.identity_requests())
        status, log = replay.run_job(replay_engine, run, timeout=LOGIN_WAIT)
        assert status == 0, (log, [(x.outcome, x.events) for x in front.logins],
                             [(r["status"], r["query"]) for r in standin.identity_requests()[asked_before:]])
        (statement,) = front.statements()
        assert statement.outcome == "done", statement
        assert (statement.claims["appid"], statement.claims["oid"]) == (admin["clientId"], admin["principalId"])
        assert statement.claims["aud"] == SQL_SPN
        name = entra.identity["name"]
        assert f"CREATE USER [{name}] WITH SID = {sid_of(app['clientId'])}, TYPE = E;" in statement.text
        assert f"ALTER ROLE [db_datareader] ADD MEMBER [{name}];" in statement.text
        assert f"ALTER ROLE [db_datawriter] ADD MEMBER [{name}];" in statement.text

        login, log, _ = first_login(entra, "app", front, replay_engine)
        claims = standin.app.tokens.verify(login.token or "")
        assert claims is not None and (claims["appid"], claims["oid"]) == (app["clientId"], app["principalId"])
        assert not front.is_admin(claims, login.user), "the app's token is the SQL administrator's"
    finally:
        front.accept_batches, front.claims, front.admin = False, None, None


@pytest.mark.parametrize("which", ["job", "app"])
def test_password_sign_in_presents_the_generated_login_and_password(password, front, replay_engine, which):
    """The job as the administrator login, the app as its own contained user."""
    resource = password.app if which == "app" else password.job
    uri = make_url(password.secrets[resource["name"]]["backend-store-uri"])
    admin = password.deployment.settings.get("sql_admin_login", "mlflowadmin")

    login, log, processes = first_login(password, which, front, replay_engine)

    assert login.outcome == "accepted", (login.outcome, login.events, log)
    assert login.fedauth_library is None and login.token is None
    assert login.user == (f"{admin}_app" if which == "app" else admin) == uri.username
    assert login.password == uri.password and len(login.password) == 32
    # While it signs in, no process in the container shows the password (as given, or encoded
    # as in the URI) in its command line.
    forms = {uri.password, quote(uri.password, safe="")}
    leaking = sum(1 for args in processes if any(form in args for form in forms))  # never print them
    assert len(processes) > 0
    assert leaking == 0, f"{leaking} of {len(processes)} processes show the password in their arguments"


def test_the_jobs_grant_signs_in_as_the_admin_login_and_creates_the_apps_password_user(password, front,
                                                                                        replay_engine):
    """sql_auth = password: the job's `grant` init container, run as deployed, against a front that
    checks SQL logins and lets only the administrator login manage users: it signs in as the
    administrator and sends CREATE USER for the app's user with the app's password (the one the
    app's secret URI holds). The app then signs in as that user, which is not the administrator."""
    job_secrets, app_secrets = (password.secrets[r["name"]] for r in (password.job, password.app))
    admin, app = make_url(job_secrets["backend-store-uri"]), make_url(app_secrets["backend-store-uri"])
    front.clear()
    front.sql_logins = {admin.username: admin.password, app.username: app.password}
    front.accept_batches, front.admin = True, {"user": admin.username}
    try:
        run = against_front(password, replay.job_init_run(password.job, job_secrets, "mlflow-grant"), front)
        assert (run.command, run.args) == (["python", "-m", "mlflow_aca_sql"], ["grant"])
        status, log = replay.run_job(replay_engine, run, timeout=LOGIN_WAIT)
        masked = log.replace(app.password, "<app password>").replace(admin.password, "<admin password>")
        assert status == 0, (masked, [(x.user, x.outcome) for x in front.logins])
        assert "<app password>" not in masked and "<admin password>" not in masked  # the grant logs neither
        (statement,) = front.statements()
        assert (statement.user, statement.outcome, statement.claims) == (admin.username, "done", None)
        text = statement.text.replace(app.password, "<app password>")   # never printed as it is
        assert app.username == f"{admin.username}_app" != admin.username
        assert f"CREATE USER [{app.username}] WITH PASSWORD = '<app password>';" in text, text
        assert f"ALTER USER [{app.username}] WITH PASSWORD = '<app password>';" in text, text
        assert f"ALTER ROLE [db_datareader] ADD MEMBER [{app.username}];" in text
        assert f"ALTER ROLE [db_datawriter] ADD MEMBER [{app.username}];" in text

        login, log, _ = first_login(password, "app", front, replay_engine)
        assert (login.outcome, login.user) == ("accepted", app.username), (login.outcome, login.user)
        assert (login.password == app.password) is True   # (no values in the message)
        assert not front.is_admin(None, login.user), "the app signs in as the SQL administrator"
    finally:
        front.sql_logins, front.accept_batches, front.admin = None, False, None
