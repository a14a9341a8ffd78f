"""A chat whose socket was replaced before its first message starts again on the new socket.

Chainlit's web client can open a second socket for the same session right after login (its connect call is
debounced per render, and a chat-profile change makes a new one), and socket.io reconnects after a network drop.
Chainlit 2.12 then restores the session but runs ``on_chat_start`` once per session only: whatever the start sent
to the first socket (chat settings, commands, the room's view) is lost, and the user gets a chat without them.
Until the user's first message, nothing can be lost by starting again, so this lets Chainlit do it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

EVENT = "connection_successful"


def install() -> None:
    """Wrap Chainlit's ``connection_successful`` handler (idempotent; call after Chainlit's socket module is loaded)."""
    import chainlit.socket  # noqa: F401 (registers Chainlit's handlers on the server)
    from chainlit.server import sio

    original = sio.handlers.get("/", {}).get(EVENT)
    if original is None:
        raise RuntimeError(f"Chainlit registered no {EVENT!r} handler: this Chainlit version is not supported")
    if getattr(original, "restarts_replaced_chats", False):
        return
    sio.on(EVENT, _restarting(original))


def _restarting(original: Callable[[str], Awaitable[None]]) -> Callable[[str], Awaitable[None]]:
    from chainlit.session import WebsocketSession

    async def connection_successful(sid: str) -> None:
        session = WebsocketSession.get(sid)
        if session is not None and session.restored and session.chat_started and not session.has_first_interaction:
            log.info("Chat %s reconnected before its first message: starting it again", session.id)
            if session.current_task and not session.current_task.done():
                session.current_task.cancel()  # a start still sending to the old socket gives way to the new one
            session.chat_started = False  # Chainlit's restored-session branch then runs on_chat_start
        await original(sid)

    connection_successful.restarts_replaced_chats = True  # type: ignore[attr-defined]
    return connection_successful
