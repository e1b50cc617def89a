"""A throw-away certificate authority (trustme) and the server's TLS contexts.

The CA's PEM is written to a file: clients trust it through REQUESTS_CA_BUNDLE. The server
certificate covers 127.0.0.1, ::1 and localhost; any other name a client asks for via SNI
(an app's FQDN reached through the proxy, later a registry's login server) gets a leaf
certificate issued on first use.
"""

from __future__ import annotations

import os
import ssl
import threading

import trustme


class Tls:
    def __init__(self, directory: str) -> None:
        self.ca = trustme.CA(organization_name="Azure stand-in test CA")
        self.ca_path = os.path.join(directory, "standin-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.context = self._context_for("127.0.0.1", "::1", "localhost")
        self.context.sni_callback = self._select
        self._by_name: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def _context_for(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        return context

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _context) -> None:
        if not server_name or server_name.lower() == "localhost":
            return
        name = server_name.lower()
        with self._lock:
            if name not in self._by_name:
                self._by_name[name] = self._context_for(name)
            sslobj.context = self._by_name[name]
