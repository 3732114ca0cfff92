"""Request limits and response headers for the viewer: a read-only, local-first server.

Only GET and HEAD requests without a body and with a bounded URL and headers get through; every
response carries headers that keep the page on its own origin (the front end loads nothing from
elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_URL_BYTES = 4096
MAX_HEADER_BYTES = 16 * 1024  # browsers send a few hundred bytes; this caps what a script may
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


async def _reject(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key == b"transfer-encoding":
            return True
        if key == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


class RequestGuard:
    """ASGI middleware: rejects oversized URLs (414), headers (431) and any body (413); adds
    security headers to every response."""

    def __init__(
        self,
        app: ASGIApp,
        max_url_bytes: int = MAX_URL_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope["query_string"]) > self.max_url_bytes:
            await _reject(send, 414, f"URL longer than {self.max_url_bytes} bytes")
            return
        if sum(len(key) + len(value) for key, value in scope["headers"]) > self.max_header_bytes:
            await _reject(send, 431, f"request headers larger than {self.max_header_bytes} bytes")
            return
        if _has_body(scope["headers"]):
            await _reject(send, 413, "request bodies are not accepted")
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
