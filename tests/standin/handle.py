"""`Standin`: start, stop and steer a stand-in inside the current process."""

from __future__ import annotations

import shlex
import shutil
import tempfile
import threading

from .app import IDENTITY_PATH, StandinApp
from .control import Control, HttpControl
from .server import StandinServer
from .tls import Tls


class Standin(Control):
    """A running stand-in. Use as a context manager, or call `start()` and `stop()`.

    The control operations (`reset`, `add_fault`, `requests`, `resources`, ...) are inherited
    from `Control`; their docstrings say what each does.
    """

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1", latency: float = 0.0,
                 request_log: str | None = None, subscription_id: str | None = None,
                 tenant_id: str | None = None, workdir: str | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="azure-standin-")
        self.tls = Tls(self.workdir)
        self.server = StandinServer((host, port), self.tls)
        self.url = f"https://{host}:{self.server.server_address[1]}"
        self.app = StandinApp(base_url=self.url, subscription_id=subscription_id, tenant_id=tenant_id,
                              latency=latency, request_log=request_log)
        self.app.control = HttpControl(self)
        self.server.app = self.app
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "Standin":
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="azure-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.app.registry_front is not None:
            self.app.registry_front.stop()
        for listener in self.app.identity_listeners.values():
            listener.stop()
        self.server.shutdown()
        self.server.server_close()
        self.app.log.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Standin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what clients need ------------------------------------------------------------------------------
    @property
    def ca_path(self) -> str:
        return self.tls.ca_path

    @property
    def subscription_id(self) -> str:
        return self.app.subscription_id

    @property
    def tenant_id(self) -> str:
        return self.app.tenant_id

    @property
    def audience(self) -> str:
        return self.app.tokens.audiences[0]

    @property
    def credential_scopes(self) -> list[str]:
        """Scopes an SDK client passes for ARM: the audience + "/.default", as azure-cli forms them."""
        return [self.audience + "/.default"]

    def env(self, *, proxy: bool = True) -> dict[str, str]:
        """Environment variables a client process needs to use this stand-in."""
        env = {
            "MLFLOW_ACA_ARM_ENDPOINT": self.url,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            "IDENTITY_ENDPOINT": self.url + IDENTITY_PATH,
            "IDENTITY_HEADER": self.app.tokens.identity_header,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
        }
        if proxy:
            env["HTTPS_PROXY"] = "http://" + self.url.split("://", 1)[1]
            env["NO_PROXY"] = "127.0.0.1,localhost,::1"
        return env

    def exports(self, *, proxy: bool = True) -> str:
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env(proxy=proxy).items())
