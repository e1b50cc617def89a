"""`python -m tests.standin [--port N] [--request-log PATH] [--latency MODEL]`

Starts the stand-in, prints the `export NAME=value` lines a client needs (eval them in a
shell), then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .handle import Standin
from .latency import parse_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin",
                                     description="Local Azure Resource Manager stand-in for mlflow-aca.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--request-log", metavar="PATH", help="append every request as a JSON line (secrets redacted)")
    parser.add_argument("--latency", default="0", type=parse_scale, metavar="MODEL",
                        help="scale real durations: 0 (instant, default), a factor such as 0.01, real, real/100")
    parser.add_argument("--no-proxy", action="store_true", help="do not print HTTPS_PROXY/NO_PROXY")
    args = parser.parse_args(argv)

    standin = Standin(port=args.port, latency=args.latency, request_log=args.request_log)
    stop = threading.Event()
    # Set SIGINT explicitly: a shell starts background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with standin:
        print(standin.exports(proxy=not args.no_proxy))
        print(f"# Azure stand-in on {standin.url}; tenant {standin.tenant_id}; control API {standin.url}/_standin/",
              flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
