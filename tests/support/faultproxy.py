"""A fault-injecting HTTP proxy for OpenAI-compatible servers, for reliability tests.

:class:`FaultProxy` listens on 127.0.0.1 and forwards every request to a real server. A seeded
share of the model requests (``POST .../completions``) goes wrong instead, in one of these ways
(the kinds take turns, so a handful of faults covers all of them):

- ``delay``: no answer until long after the client's timeout, then the connection is dropped;
- ``http_503``: a 503 status with an OpenAI-style error body;
- ``reset``: the connection is closed without an answer;
- ``truncated_body``: the server's answer, cut off halfway through the HTTP body;
- ``malformed_body``: a 200 whose body is not JSON at all;
- ``malformed_answer``: the model's text replaced by broken JSON;
- ``truncated_answer``: the model's text cut in half (``finish_reason`` "length");
- ``schema_answer``: the model's text replaced by valid JSON that breaks the answer's schema.

Identical requests reach the server once: a retry joins the first request's answer (and a
``delay`` fault still starts the real request), so a slow model is asked each question once
however often the client times out and retries. Faulty model texts carry the marker
``__fault__`` where they can. The proxy counts what it did
(:attr:`FaultProxy.faults`, :attr:`FaultProxy.requests`) and keeps every model text it passed
through unchanged (:attr:`FaultProxy.clean_answers`), so a test can check that nothing else was
taken for the model's word. The upstream key replaces whatever key the client sent.

Examples
--------
>>> upstream = "http://127.0.0.1:8080"  # a running OpenAI-compatible server
>>> with FaultProxy(upstream, api_key="secret", rate=0.3, seed=1) as proxy:  # doctest: +SKIP
...     llm_base_url = proxy.base_url          # "http://127.0.0.1:PORT/v1"
...     ...
...     print(proxy.faults)                     # Counter({'delay': 2, 'reset': 2, ...})
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

FaultKind = Literal[
    "delay",
    "http_503",
    "reset",
    "truncated_body",
    "malformed_body",
    "malformed_answer",
    "truncated_answer",
    "schema_answer",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "reset",
    "malformed_answer",
    "http_503",
    "truncated_answer",
    "truncated_body",
    "schema_answer",
    "malformed_body",
    "delay",
)
MARKER = "__fault__"
UPSTREAM_TIMEOUT_S = 600.0


class FaultProxy:
    """Forwards requests to ``upstream`` (``http://host:port``), breaking a share of them.

    ``rate`` is the chance that a model request fails, drawn from ``random.Random(seed)`` in the
    order requests arrive; ``delay_s`` is how long a ``delay`` fault holds the request (make it
    longer than the client's timeout); ``kinds`` are the faults to use, in turn.
    ``sure_faults`` model requests fail first, whatever the rate: with ``len(kinds)`` a test
    sees every kind however few requests its workload happens to make.
    """

    def __init__(
        self,
        upstream: str,
        *,
        api_key: str | None = None,
        rate: float = 0.3,
        seed: int = 0,
        delay_s: float = 5.0,
        kinds: tuple[FaultKind, ...] = FAULT_KINDS,
        sure_faults: int = 0,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        if sure_faults < 0:
            raise ValueError(f"sure_faults must be 0 or more, got {sure_faults}")
        if not kinds:
            raise ValueError("give at least one fault kind")
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.api_key = api_key
        self.rate = rate
        self.delay_s = delay_s
        self.kinds = kinds
        self.sure_faults = sure_faults
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.clean_answers: list[str] = []
        self._rng = random.Random(seed)
        self._answers: dict[bytes, Future[tuple[int, list[tuple[str, str]], bytes]]] = {}
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The proxy's OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> Self:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fault-proxy", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (requests held by a ``delay`` fault are abandoned)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set_rate(self, rate: float) -> None:
        """Change the fault rate from the next request on."""
        with self._lock:
            self.rate = rate

    # -- used by the request handler -------------------------------------------------------------

    def next_fault(self) -> FaultKind | None:
        """Whether the next model request fails, and how (counted)."""
        with self._lock:
            self.requests += 1
            # The draw is made on every request so the seeded sequence does not shift.
            spared = self._rng.random() >= self.rate
            if spared and self.requests > self.sure_faults:
                return None
            kind = self.kinds[sum(self.faults.values()) % len(self.kinds)]
            self.faults[kind] += 1
            return kind

    def forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream server's answer to this request: asked once, shared by identical ones."""
        key = f"{method} {path}\n".encode() + body
        with self._lock:
            answer = self._answers.get(key)
            owner = answer is None
            if answer is None:
                answer = self._answers[key] = Future()
        if owner:
            try:
                result = self._fetch(method, path, body, headers)
            except BaseException as error:
                with self._lock:
                    del self._answers[key]
                answer.set_exception(error)
                raise
            if result[0] != 200:  # only answers are kept; errors are asked again
                with self._lock:
                    del self._answers[key]
            answer.set_result(result)
        return answer.result()

    def prefetch(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        """Start forwarding in the background (for a request this proxy will not answer)."""

        def fetch() -> None:
            # A failure here is the next identical request's to see (it asks again).
            with contextlib.suppress(Exception):
                self.forward(method, path, body, headers)

        threading.Thread(target=fetch, daemon=True).start()

    def _fetch(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        if self.api_key is not None:
            sent["Authorization"] = f"Bearer {self.api_key}"
        connection = http.client.HTTPConnection(
            self.upstream_host, self.upstream_port, timeout=UPSTREAM_TIMEOUT_S
        )
        try:
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS]
            return response.status, kept, data
        finally:
            connection.close()

    def note_clean(self, body: bytes) -> None:
        text = answer_text(body)
        if text is not None:
            with self._lock:
                self.clean_answers.append(text)


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print clients hanging up (they time out here)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "authorization"}
)


def answer_text(body: bytes) -> str | None:
    """The model's text in an OpenAI chat or completion response body, if there is one."""
    try:
        choice = json.loads(body)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(choice.get("message"), dict):
        content = choice["message"].get("content")
        return content if isinstance(content, str) else None
    text = choice.get("text")
    return text if isinstance(text, str) else None


def broken_answer(kind: FaultKind, body: bytes) -> bytes:
    """``body`` with the model's text replaced as the answer-level fault ``kind`` says."""
    response: dict[str, Any] = json.loads(body)
    choice = response["choices"][0]
    key = "message" if isinstance(choice.get("message"), dict) else None
    text = (choice[key]["content"] if key else choice.get("text")) or ""
    if kind == "truncated_answer":
        text = text[: len(text) // 2]
        choice["finish_reason"] = "length"
    elif kind == "malformed_answer":
        text = f'{{"{MARKER}": malformed answer, no JSON here'
    else:
        text = json.dumps(_schema_breaking(text))
    if key:
        choice[key]["content"] = text
    else:
        choice["text"] = text
    return json.dumps(response).encode("utf-8")


def _schema_breaking(text: str) -> dict[str, Any]:
    """Valid JSON with the answer's keys, each holding an object no schema field expects."""
    try:
        original = json.loads(text)
    except ValueError:
        original = None
    keys = list(original) if isinstance(original, dict) and original else [MARKER]
    return {key: {MARKER: "schema violation"} for key in keys}


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            self._relay(b"", None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            fault = proxy.next_fault() if self.path.endswith("completions") else None
            self._relay(body, fault)

        def _relay(self, body: bytes, fault: FaultKind | None) -> None:
            headers = {k: v for k, v in self.headers.items()}
            if fault == "delay":
                proxy.prefetch(self.command, self.path, body, headers)
                time.sleep(proxy.delay_s)
                self._reset()
                return
            if fault == "reset":
                self._reset()
                return
            if fault == "http_503":
                error = {"error": {"message": "injected fault", "type": "server_error"}}
                self._send(503, [("Content-Type", "application/json")], json.dumps(error).encode())
                return
            if fault == "malformed_body":
                self._send(200, [("Content-Type", "application/json")], b"{<html>oops</html>")
                return
            status, upstream_headers, data = proxy.forward(self.command, self.path, body, headers)
            if fault == "truncated_body":
                self._send(status, upstream_headers, data, cut=True)
                return
            if fault in ("malformed_answer", "truncated_answer", "schema_answer") and status == 200:
                data = broken_answer(fault, data)
            elif status == 200 and self.command == "POST":
                proxy.note_clean(data)
            self._send(status, upstream_headers, data)

        def _send(
            self, status: int, headers: list[tuple[str, str]], data: bytes, *, cut: bool = False
        ) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if cut else data)
            self.wfile.flush()
            self.close_connection = True
            if cut:
                self._reset()

        def _reset(self) -> None:
            """Drop the connection at once (an RST, not an orderly close)."""
            try:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            except OSError:
                pass
            self.close_connection = True

    return Handler
