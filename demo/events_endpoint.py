"""An EventBridge endpoint for the emulated account: PutEvents goes to the event runner, every other EventBridge
call to the emulator unchanged.

The scenario puts its events here, and so can anyone while `make demo --keep` holds the account up:
`AWS_ENDPOINT_URL_EVENTBRIDGE=<this> aws events put-events ...`. Real EventBridge refuses `aws.*` sources from
PutEvents; this endpoint accepts them, since it plays CloudTrail handing its records to EventBridge.

In the organization demo the runner is demo.org_runner's, which is told the caller's access key (the account the
event comes from) and may refuse the call (an error with a `code`, answered as EventBridge answers it).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from demo.emulator import HOST, Emulator
from demo.runner import EventRunner

_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/events/aws4_request")
_KEY = re.compile(r"Credential=([^/]+)/")


class AccountsRunner(Protocol):
    """A runner that needs to know who sent the events (demo.org_runner.OrgRunner)."""

    emulator: Emulator

    def put_events(self, region: str, access_key_id: str, entries: Any) -> list[str]: ...


class EventsEndpoint:
    def __init__(self, runner: EventRunner | AccountsRunner) -> None:
        self.runner = runner
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="events-endpoint", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        runner = self.runner

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("X-Amz-Target") == "AWSEvents.PutEvents":
                    self._put_events(body)
                else:
                    self._forward(body)

            def do_GET(self) -> None:
                self._forward(b"")

            def _put_events(self, body: bytes) -> None:
                match = _REGION.search(self.headers.get("Authorization", ""))
                if match is None:
                    self._reply(400, {"__type": "ValidationException", "message": "unsigned request"})
                    return
                try:
                    entries = json.loads(body).get("Entries", [])
                    if isinstance(runner, EventRunner):
                        ids = runner.put_events(match.group(1), entries)
                    else:
                        key = _KEY.search(self.headers.get("Authorization", ""))
                        ids = runner.put_events(match.group(1), key.group(1) if key else "", entries)
                except Exception as exc:  # reported to the caller as EventBridge would, never swallowed
                    code = None if isinstance(runner, EventRunner) else getattr(exc, "code", None)
                    if isinstance(code, str):  # refused, as EventBridge refuses (AccessDeniedException...)
                        self._reply(400, {"__type": code, "message": str(exc)})
                        return
                    self._reply(500, {"__type": "InternalException", "message": f"{type(exc).__name__}: {exc}"})
                    return
                self._reply(200, {"FailedEntryCount": 0, "Entries": [{"EventId": i} for i in ids]})

            def _forward(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(HOST, runner.emulator.port, timeout=60)
                # the Host header as the caller signed it: with IAM enforced, moto checks the signature
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            def _reply(self, status: int, document: Any) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
