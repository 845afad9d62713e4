"""A recording FAKE of the few Grafana HTTP API endpoints benchwatch calls.

No Grafana server can be installed on these machines; this stand-in only records requests and
answers the way Grafana's HTTP API documentation says, so tests can check what grafana-client
sends on our behalf. Tests against a real Grafana run when GRAFANA_URL is set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from benchwatch import services


class RecordingGrafana(ThreadingHTTPServer):
    def __init__(self, token: str) -> None:
        super().__init__(("127.0.0.1", services.free_port()), _Handler)
        self.token = token
        self.requests: list[tuple[str, str, Any]] = []
        self.folders: set[str] = set()
        self.next_id = 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: RecordingGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._reply(401, {"message": "Unauthorized"})
        path = self.path.split("?")[0]
        if self.command == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.server.folders:
                return self._reply(200, {"uid": uid})
            return self._reply(404, {"message": "folder not found"})
        if self.command == "POST" and path == "/api/folders":
            self.server.folders.add(body["uid"])
            return self._reply(200, {"uid": body["uid"], "title": body["title"]})
        if self.command == "POST" and path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            return self._reply(200, {"status": "success", "uid": uid, "url": f"/d/{uid}"})
        if self.command == "POST" and path == "/api/annotations":
            self.server.next_id += 1
            return self._reply(200, {"id": self.server.next_id, "message": "Annotation added"})
        if self.command == "PATCH" and path.startswith("/api/annotations/"):
            return self._reply(200, {"message": "Annotation patched"})
        return self._reply(404, {"message": "not found"})

    do_GET = do_POST = do_PATCH = _handle  # noqa: N815


@pytest.fixture
def fake_grafana() -> Iterator[RecordingGrafana]:
    server = RecordingGrafana(token="test-token")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


