"""The sweep comparison's emulated account: moto's server on loopback, every request counted at the server.

`python -m bench.sweep_server --port N` (MOTO_ACCOUNT_ID names the account) serves moto's app wrapped in
`CallCounter`, a WSGI middleware that counts each request by service and operation (the service from the SigV4
credential scope, the operation from the `Action` form field or query parameter, or the `X-Amz-Target` header):
what each tool really asked, not what it says it asked. Two routes for the harness, outside moto and never counted:

- GET /_bench/calls: the counts since the last reset, {"ec2:DescribeImages": 1, ...};
- POST /_bench/reset: forget them (the bench resets before each run);
- POST /_bench/latency?ms=N: from now on, wait N ms before answering each call (a network round trip, which moto
  on loopback lacks; 0 by default, for the seeding and the information rounds; the budgeted rounds set
  bench.sweep.BUDGET_LATENCY_MS, an assumed round trip);
- GET /_bench/health.

moto gaps worked around here, in the harness only (../shared/NOTES.md): DescribeSnapshots ignores OwnerIds and
RestorableByUserIds (it would hand both tools every snapshot of the region, the ~1,300 behind moto's Amazon-owned
AMIs among them, as the account's); demo.ec2_gaps.install() filters them as EC2 does, the fix the demo's emulator
applies (demo/emulator_server.py), and answers the three account-setting reads moto does not implement.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

ADMIN_PREFIX = "/_bench/"
READY_LINE = "ami-guard-bench sweep emulator ready"
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def operation(environ: dict[str, Any], body: bytes) -> str:
    """`service:Operation` of one request: the service from the SigV4 credential scope ("?" without one), the
    operation from X-Amz-Target (JSON protocols), else the `Action` of the query string or form body (EC2, STS...),
    else the method and path's first segment (REST protocols)."""
    scope = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    service = scope.group(1) if scope else "?"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if not action and body and content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return f"{service}:{action[0]}"
    segment = str(environ.get("PATH_INFO", "/")).strip("/").split("/", 1)[0]
    return f"{service}:{environ.get('REQUEST_METHOD', '?')} /{segment}"


class CallCounter:
    """WSGI middleware: counts every request that reaches `app` by `operation()`, then hands it on unchanged (the
    body it read is put back as the request's input). With `latency` (seconds), each counted request waits that long
    first, without holding the GIL: a network round trip, which moto on loopback lacks (the budgeted rounds' setting,
    see bench.sweep.BUDGET_LATENCY_MS and docs/performance.md)."""

    def __init__(self, app: WsgiApp, latency: float = 0.0) -> None:
        self.app = app
        self.latency = latency
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(ADMIN_PREFIX):
            return self.admin(path[len(ADMIN_PREFIX) :], environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        name = operation(environ, body)
        with self.lock:
            self.calls[name] += 1
        if self.latency:
            time.sleep(self.latency)
        return self.app(environ, start_response)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(sorted(self.calls.items()))

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()

    def admin(self, route: str, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body: Any
        if route == "calls":
            status, body = "200 OK", self.snapshot()
        elif route == "reset" and environ.get("REQUEST_METHOD") == "POST":
            self.reset()
            status, body = "200 OK", {}
        elif route == "latency" and environ.get("REQUEST_METHOD") == "POST":
            self.latency = float(parse_qs(str(environ.get("QUERY_STRING", ""))).get("ms", ["0"])[0]) / 1000
            status, body = "200 OK", {"latency_ms": self.latency * 1000}
        elif route == "health":
            status, body = "200 OK", {"ready": True}
        else:
            status, body = "404 Not Found", {"error": f"no route {route!r}"}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from demo import ec2_gaps

    ec2_gaps.install()  # moto's gaps, filled as the demo's emulator fills them (see the module's docstring)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: 3,000 lines a run would be timed too
    server = make_server(
        args.host,
        args.port,
        CallCounter(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    print(f"{READY_LINE} on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
