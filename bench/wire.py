"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load process.

The load process shares two cores with the gateway it measures, so each request must cost it
as little as possible: the request bytes are prepared beforehand, and the answer is read as a
status line, a Content-Length and a body, with nothing else parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode


class RefusedError(Exception):
    """The answer was not HTTP/1.1 with a Content-Length: nothing else is expected here."""


class Connection:
    """One keep-alive connection, reopened when the server closed it while idle."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def exchange(self, payload: bytes) -> tuple[int, bytes]:
        """(status, body) of one request. Sent again, once, on a fresh connection when a kept-alive
        one turns out to have been closed by the server while idle (gunicorn's keepalive)."""
        reused = self.writer is not None
        try:
            return await self._timed(payload)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            await self.close()
            if not reused:
                raise
        except BaseException:
            await self.close()
            raise
        self.reconnects += 1
        try:
            return await self._timed(payload)
        except BaseException:
            await self.close()
            raise

    async def _timed(self, payload: bytes) -> tuple[int, bytes]:
        async with asyncio.timeout(self.timeout):  # no task per request, unlike wait_for
            return await self._exchange(payload)

    async def _exchange(self, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None  # noqa: S101 - opened together with the writer
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise RefusedError(head[:200].decode("latin-1"))
        end = lowered.index(b"\r\n", at + 2)
        body = await self.reader.readexactly(int(lowered[at + 17 : end]))
        if b"\r\nconnection: close" in lowered:
            await self.close()
        return status, body

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def form_post(path: str, form: dict[str, str]) -> bytes:
    """A form POST as Africa's Talking sends its USSD callback."""
    body = urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
