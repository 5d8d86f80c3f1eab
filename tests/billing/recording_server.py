"""A small HTTP server on loopback that records what the stripe library sends and answers as scripted.

Used for the Stripe endpoints localstripe lacks (prices, Checkout Sessions, billing-portal
sessions): tests assert the exact parameters and headers the portal sends, and give the
answer Stripe's API reference documents for that call.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


Responder = Callable[[Recorded], Optional[tuple[int, dict]]]


@dataclass
class RecordingServer:
    requests: list[Recorded] = field(default_factory=list)
    responders: list[Responder] = field(default_factory=list)
    url: str = ""

    def answer(self, responder: Responder) -> None:
        """Add a responder; the first one returning an answer wins, else 404 like Stripe."""
        self.responders.append(responder)

    def reset(self) -> None:
        self.requests.clear()
        self.responders.clear()

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _handler(state: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            recorded = Recorded(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                form=dict(parse_qsl(body, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            state.requests.append(recorded)
            answer = None
            for responder in state.responders:
                answer = responder(recorded)
                if answer is not None:
                    break
            status, payload = answer or (
                404,
                {"error": {"type": "invalid_request_error", "message": f"No such route {parts.path}"}},
            )
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{len(state.requests)}")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args) -> None:  # quiet test output
            return

    return Handler


def start_recording_server() -> tuple[RecordingServer, ThreadingHTTPServer]:
    state = RecordingServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
