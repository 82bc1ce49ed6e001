"""Test doubles for summary tests: a local fake of the Anthropic Messages API and a hash embedder.

`FakeAnthropic` runs a stdlib `ThreadingHTTPServer` on 127.0.0.1 (ephemeral port) in a background thread,
answers `POST /v1/messages` like the real API and records every request, so tests can drive the real
`anthropic` SDK and then inspect exactly what it sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake received."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        """The text of all user turns in a Messages API body, joined."""
        parts: list[str] = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(block.get("text", "") for block in content or [])
        return "\n".join(parts)


@dataclass(frozen=True)
class Reply:
    """What the fake answers to one request: a summary text, or an error status."""

    text: str = "- summary"
    status: int = 200
    error_type: str = "api_error"


class FakeAnthropic:
    """A local Messages API. Queue replies with `reply(...)`/`fail(...)`; unqueued requests get `default`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.default = Reply()
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration -------------------------------------------------------------------------------

    def reply(self, *texts: str) -> None:
        """Answer the next requests, in order, with these summary texts."""
        with self._lock:
            self._queue.extend(Reply(text=t) for t in texts)

    def fail(self, status: int, error_type: str = "api_error") -> None:
        """Answer every request from now on with this HTTP error status."""
        with self._lock:
            self._queue.clear()
            self.default = Reply(status=status, error_type=error_type)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeAnthropic is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def prompts(self) -> list[str]:
        """The user-turn text of every request received so far."""
        with self._lock:
            return [r.prompt for r in self.requests]

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT)
            assert not self._thread.is_alive(), "fake Anthropic server did not stop"

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- request handling (server threads) -----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._queue.pop(0) if self._queue else self.default


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnthropic

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.fake._record(RecordedRequest("POST", self.path, headers, body))
        if self.path.split("?")[0] != "/v1/messages":
            self._send(404, _error("not_found_error", f"no route {self.path}"))
        elif reply.status != 200:
            # retry-after-ms keeps the SDK's automatic retries of 5xx answers fast.
            self._send(reply.status, _error(reply.error_type, f"fake failure {reply.status}"), {"retry-after-ms": "1"})
        else:
            n = len(self.fake.requests)
            self._send(
                200,
                {
                    "id": f"msg_fake_{n:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "unknown"),
                    "content": [{"type": "text", "text": reply.text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": max(1, len(raw) // 4), "output_tokens": max(1, len(reply.text) // 4)},
                },
            )

    def _send(self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}
