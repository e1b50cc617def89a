"""What a client needs to talk to the server: the tracking URI, and the fix for the
OpenTelemetry variables Azure Container Apps injects.

When OTEL_EXPORTER_OTLP_ENDPOINT is set, MLflow sends traces to that collector instead of the
tracking server; Container Apps sets it in every container of an environment with an OTLP
destination, and it cannot be overridden in the app's configuration. Removing it from the
client's environment before MLflow starts tracing is what brings traces back
(MLFLOW_ENABLE_OTLP_EXPORTER=false alone is not enough unless the OTLP exporter packages are
installed; it is set as well, for those that have them).
"""

from __future__ import annotations

from collections.abc import Mapping

INJECTED = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
SHELLS = ("bash", "zsh", "fish", "powershell")


# The request-auth provider mlflow-aca ships (mlflow_aca.client_auth) and the variable that
# tells it which scope to ask Entra for.
AUTH_PROVIDER = "mlflow-aca"
SCOPE_VARIABLE = "MLFLOW_ACA_AUTH_SCOPE"


def client_settings(tracking_uri: str, scope: str | None) -> dict[str, str]:
    """The variables a client sets: with sign-in on, the provider that attaches tokens."""
    settings = {"MLFLOW_TRACKING_URI": tracking_uri}
    if scope:
        settings |= {"MLFLOW_TRACKING_AUTH": AUTH_PROVIDER, SCOPE_VARIABLE: scope}
    return settings | {"MLFLOW_ENABLE_OTLP_EXPORTER": "false"}


def shell_lines(tracking_uri: str, shell: str, scope: str | None = None) -> list[str]:
    settings = client_settings(tracking_uri, scope)
    if shell in ("bash", "zsh"):
        return ([f"export {k}={_posix_quote(v)}" for k, v in settings.items()]
                + [f"unset {' '.join(INJECTED)}"])
    if shell == "fish":
        # A bare `set -e` of a variable that is not set fails (status 4), and fish's `set` keeps
        # the previous status: `mlflow-aca env --shell fish | source; and python train.py` would
        # then stop wherever the injected variables are absent. `if` ends with status 0.
        return ([f"set -gx {k} {_posix_quote(v)}" for k, v in settings.items()]
                + [f"if set -q {name}; set -e {name}; end" for name in INJECTED])
    if shell == "powershell":
        return ([f"$env:{k} = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in settings.items()]
                + [f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in INJECTED])
    raise ValueError(f"unknown shell {shell}")


def injected_present(environ: Mapping[str, str]) -> list[str]:
    return [name for name in INJECTED if environ.get(name)]


def _posix_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
