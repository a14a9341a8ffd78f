"""Live delivery of room state to every member's open chat session.

Each open session in a room has a :class:`Seat` with a :class:`~assistant.rooms.Cursor` of what it
has shown. A push never carries data: it tells the seat to show everything in the database newer
than its cursor (:func:`sync`). So a session that missed pushes while its socket was down catches
up on the next one, two pushes at once cannot duplicate or drop an item (one lock per seat), and a
late joiner is simply a seat whose cursor starts at zero.

Chainlit internals used (pinned chainlit 2.12, covered by tests/test_rooms_browser.py):
``WebsocketSession.get_by_id``, ``init_ws_context`` in a task of its own, resetting
``chainlit.context.local_steps`` so the message has no parent step the recipient lacks, and
``sio.manager.is_connected`` to skip sockets that are down. The registry is per process: run one
server process (several would need sticky sessions and a shared bus).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from assistant.rooms import AccessDenied, Cursor, RoomState

log = logging.getLogger(__name__)


@dataclass
class Seat:
    """One open chat session inside one room."""

    session_id: str
    room_id: str
    username: str
    base_url: str
    cursor: Cursor = field(default_factory=Cursor)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


Render = Callable[[Seat, RoomState], Awaitable[None]]
Load = Callable[[Seat], Awaitable[RoomState]]


class RoomHub:
    """The seats of this process, and the pushes to them."""

    def __init__(self) -> None:
        self.seats: dict[str, Seat] = {}
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()

    def take(self, seat: Seat) -> None:
        self.seats[seat.session_id] = seat

    def leave(self, session_id: str) -> None:
        self.seats.pop(session_id, None)

    def seat(self, session_id: str) -> Seat | None:
        return self.seats.get(session_id)

    def room_lock(self, room_id: str) -> asyncio.Lock:
        """One synthesis or revision at a time per room in this process (the database guards across processes)."""
        return self._room_locks.setdefault(room_id, asyncio.Lock())

    def live_session(self, seat: Seat):
        """The seat's Chainlit session if its socket is connected; None otherwise (a gone session drops the seat)."""
        from chainlit.server import sio
        from chainlit.session import WebsocketSession

        session = WebsocketSession.get_by_id(seat.session_id)
        if session is None:
            self.leave(seat.session_id)
            return None
        try:
            connected = sio.manager.is_connected(session.socket_id, "/")
        except (KeyError, ValueError):
            connected = False
        return session if connected else None

    def present(self, room_id: str) -> list[str]:
        return sorted({s.username for s in list(self.seats.values()) if s.room_id == room_id and self.live_session(s)})

    def notify(self, room_id: str, load: Load, render: Render, notice: str | None = None,
               exclude: str | None = None) -> list[asyncio.Task]:
        """Push to every connected seat of the room: an optional notice, then whatever is new for that seat."""
        tasks = []
        for seat in [s for s in list(self.seats.values()) if s.room_id == room_id and s.session_id != exclude]:
            session = self.live_session(seat)
            if session is None:
                continue
            task = asyncio.get_running_loop().create_task(self._push(seat, session, load, render, notice))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            tasks.append(task)
        return tasks

    async def _push(self, seat: Seat, session, load: Load, render: Render, notice: str | None) -> None:
        import chainlit as cl
        from chainlit.context import init_ws_context, local_steps

        init_ws_context(session)  # this task's context now talks to that session
        local_steps.set(None)  # no parent step: the recipient has none of the sender's steps
        try:
            if notice:
                await cl.Message(content=notice, author="Room").send()
            await sync(seat, load, render)
        except AccessDenied:
            self.leave(seat.session_id)
        except Exception:  # one broken session must not stop the others
            log.exception("Push to session %s of room %s failed", seat.session_id, seat.room_id)


async def sync(seat: Seat, load: Load, render: Render) -> None:
    """Show the seat everything newer than its cursor, then move the cursor (one sync at a time per seat)."""
    async with seat.lock:
        state = await load(seat)
        await render(seat, state)
        seat.cursor.advance(state)
