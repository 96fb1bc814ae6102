"""Request limits of the HTTP service, and the ASGI layer that enforces the body size before any parsing.

The body limit is checked twice because a client can lie or say nothing: a declared Content-Length over the
limit is answered 413 at once, and a chunked (or under-declared) body is counted as it streams and answered 413
the moment it passes the limit, so the server never holds more than the limit of one request in memory.
Counts (sessions per request, events per session) can only be checked after parsing; they answer 422.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Limits(BaseModel):
    """What one request may hold; each maps to a ``logsieve serve`` option named in the error it causes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(8 << 20, ge=1, description="request body size (--max-body-bytes)")
    max_sessions: int = Field(10_000, ge=1, description="sessions per request (--max-sessions)")
    max_events: int = Field(10_000, ge=1, description="events per session (--max-events)")


def too_many_sessions(n: int, limits: Limits, where: str) -> str | None:
    """The 422 message when ``n`` sessions break --max-sessions, else None."""
    if n <= limits.max_sessions:
        return None
    return f"{where}: {n:,} sessions exceed the limit of {limits.max_sessions:,} per request (--max-sessions)"


def too_many_events(lengths: list[int], ids: list[str], limits: Limits, where: str) -> str | None:
    """The 422 message naming the first session longer than --max-events, else None."""
    for i, (n, sid) in enumerate(zip(lengths, ids, strict=True)):
        if n > limits.max_events:
            at = where.format(i=i)
            return (f"{at}: session {sid!r} has {n:,} events, over the limit of {limits.max_events:,} "
                    "per session (--max-events)")  # fmt: skip
    return None


class BodyLimitMiddleware:
    """Read the whole body under the limit, then replay it to the app; 413 as soon as it is over the limit.

    A client that disconnects while sending gets no answer (there is nobody to answer) and leaves nothing
    behind: the app is never called for a half-received request.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reject(send, f"request body of {declared:,} bytes exceeds the limit of {self.max_bytes:,} "
                                "bytes (--max-body-bytes)")  # fmt: skip
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope["logsieve.disconnected"] = True
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await _reject(send, f"request body exceeds the limit of {self.max_bytes:,} bytes "
                                    "(--max-body-bytes; counted while streaming)")  # fmt: skip
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal whole
            if whole is not None:
                out, whole = whole, None
                return out
            return await receive()  # after the body: only http.disconnect can come

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size; h11 has already refused a malformed Content-Length with 400."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
