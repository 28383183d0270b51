"""Messages between the coordinator and a worker process, batched.

A frame is a 4-byte big-endian length and a pickled list of messages (tuples
whose first item names them). Messages sent during one turn of the event loop
go out as one frame and one ``write``: a page costs the coordinator a share
of a frame, not a system call. Both ends are this package's own processes
over a ``socketpair``, so pickle is safe here.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from typing import Any

_HEADER = 4
MAX_FRAME = 1 << 30  # a frame holds whole responses (each under max_response_size)


class Channel:
    """One end of a coordinator-worker connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._out: list[Any] = []
        self._loop = asyncio.get_running_loop()
        self.frames_out = self.messages_out = self.bytes_out = 0
        self.frames_in = self.messages_in = self.bytes_in = 0

    def send(self, message: tuple[Any, ...]) -> None:
        """Queue ``message``; it leaves with the others of this loop turn."""
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(message)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not out or self._writer.is_closing():
            return
        data = pickle.dumps(out, pickle.HIGHEST_PROTOCOL)
        self._writer.write(len(data).to_bytes(_HEADER, "big") + data)
        self.frames_out += 1
        self.messages_out += len(out)
        self.bytes_out += len(data) + _HEADER

    async def receive(self) -> list[Any] | None:
        """The next frame's messages, or None when the other end has gone."""
        try:
            n = int.from_bytes(await self._reader.readexactly(_HEADER), "big")
            if n > MAX_FRAME:
                return None
            data = await self._reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.bytes_in += n + _HEADER
        messages: list[Any] = pickle.loads(data)
        self.frames_in += 1
        self.messages_in += len(messages)
        return messages

    async def close(self) -> None:
        self._flush()
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
