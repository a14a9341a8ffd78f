"""Co-drafting rooms in the chat app: commands, join links, live pushes, synthesis, revision, export.

Room state lives in the app's database (:class:`assistant.rooms.RoomStore` on ``history_url``);
chat messages only render it. A session enters a room by creating it (**Room** command), by its
join code (**Join**) or link (``/policylab/rooms/join/<code>``), or by opening the room's link
(``/policylab/rooms/<id>``, members only). The room a user last entered is remembered, so a
reload, a new chat or a server restart opens it again with its whole state.
"""

from __future__ import annotations

import asyncio
import logging
import re
from http.cookies import SimpleCookie

import chainlit as cl
from fastapi import HTTPException, Request  # module level: the route signatures are resolved by name
from fastapi.responses import RedirectResponse, Response

from assistant.rooms import KINDS, AccessDenied, Room, RoomError, RoomState, RoomStore
from assistant.rooms import synthesis
from assistant.rooms.draft import SECTIONS, canonical_section
from assistant.settings import get_settings

from assistant.app import room_render as view
from assistant.app.export import room_filename, room_to_docx, room_to_markdown
from assistant.app.room_live import RoomHub, Seat, sync
from assistant.app.flows import chat_commands
from assistant.app.runtime import state as app_state

log = logging.getLogger(__name__)

JOIN_COOKIE = "policylab_join"
ROUTES = "/policylab/rooms"
ROOM_COMMANDS = [
    {"id": "Proposal", "icon": "lightbulb", "description": "Post a proposal to the room", "button": False},
    {"id": "Objection", "icon": "octagon-x", "description": "Post an objection", "button": False},
    {"id": "Experience", "icon": "book-open", "description": "Share a piece of experience", "button": False},
    {"id": "Position", "icon": "message-square", "description": "Post a position (the default for plain messages)", "button": False},
    {"id": "Synthesise", "icon": "sparkles", "description": "Draft a joint recommendation from all contributions", "button": False},
    {"id": "Comment", "icon": "message-circle", "description": "Comment on a section: its number, then the comment", "button": False},
    {"id": "Endorse", "icon": "thumbs-up", "description": "Endorse a section: its number", "button": False},
    {"id": "Object", "icon": "thumbs-down", "description": "Object to a section: its number, then why", "button": False},
    {"id": "Revise", "icon": "pencil", "description": "Ask for a revision: section number, then the change", "button": False},
    {"id": "Share", "icon": "share-2", "description": "Share one of your uploads into the room (its file name)", "button": False},
    {"id": "Export", "icon": "file-down", "description": "Export the draft as DOCX and Markdown", "button": False},
    {"id": "Close", "icon": "lock", "description": "Close the room and export it (facilitator)", "button": False},
    {"id": "Leave", "icon": "log-out", "description": "Leave the room view (you stay a member)", "button": False},
]
OUTSIDE_COMMANDS = [
    {"id": "Room", "icon": "users", "description": "Create a co-drafting room: type its topic", "button": False},
    {"id": "Join", "icon": "log-in", "description": "Join a room: type its join code", "button": False},
    {"id": "Rooms", "icon": "list", "description": "List your rooms with their links", "button": False},
]
TYPED = re.compile(r"^/([A-Za-z]+)\b\s*(.*)$", re.S)
PREFIX = re.compile(rf"^\s*({'|'.join(KINDS)})\s*:\s*(.*)$", re.I | re.S)

_store: RoomStore | None = None
hub = RoomHub()


def store() -> RoomStore:
    if _store is None:
        raise RuntimeError("Rooms are not ready: the app has not started (run it with `policylab serve`).")
    return _store


async def startup() -> None:
    """Open the room tables in the app's database and add the room routes (after ``runtime.startup``)."""
    global _store
    from chainlit.server import app

    _store = RoomStore.open(get_settings().history_url)
    await _store.ensure_schema()
    install_routes(app)


async def shutdown() -> None:
    if _store is not None:
        await _store.close()


# --- sessions -----------------------------------------------------------------------------------
def _username() -> str:
    user = cl.user_session.get("user")
    return user.identifier if user else ""


def _base_url() -> str:
    environ = getattr(cl.context.session, "environ", {}) or {}
    origin = environ.get("HTTP_ORIGIN")
    if origin:
        return origin
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '127.0.0.1:8000')}"


def _join_cookie() -> str | None:
    environ = getattr(cl.context.session, "environ", {}) or {}
    cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    return cookie[JOIN_COOKIE].value if JOIN_COOKIE in cookie else None


async def chat_start() -> None:
    """After the chat's own start: open the user's current room, or offer the room commands."""
    username = _username()
    try:
        code = _join_cookie()
        if code:
            room = await store().join(code, username)
            await store().set_focus(username, room.id)
        room_id = await store().focus_of(username)
        if room_id:
            await enter(await store().room_for(room_id, username))
            return
    except RoomError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
    await cl.context.emitter.set_commands(_outside_commands(username))


async def chat_resume() -> None:
    await chat_start()


def _outside_commands(username: str) -> list[dict]:
    """The chat's own commands plus the room commands."""
    return chat_commands(username) + OUTSIDE_COMMANDS


async def enter(room: Room) -> None:
    """Seat this session in ``room`` and show its whole state; tell the others who is here."""
    username = _username()
    seat = Seat(cl.context.session.id, room.id, username, _base_url())
    hub.take(seat)
    cl.user_session.set("room_id", room.id)
    await cl.context.emitter.set_commands(ROOM_COMMANDS)
    full = await store().state(room.id, username)
    await cl.Message(content=view.header(room, full.members, hub.present(room.id), seat.base_url), author="Room").send()
    await sync(seat, _load, _render)
    await cl.Message(content=view.HELP, author="Room").send()
    present = hub.present(room.id)
    hub.notify(room.id, _load, _render, notice=f"**{username}** is here. {view.presence_line(present)}", exclude=seat.session_id)


async def _load(seat: Seat) -> RoomState:
    return await store().state(seat.room_id, seat.username, after=seat.cursor)


async def _render(seat: Seat, state: RoomState) -> None:
    """Send what is new for this seat (its own contributions excepted: its chat shows them already)."""
    for c in state.contributions:
        if c.origin != seat.session_id:
            await cl.Message(content=view.contribution_markdown(c), author=c.author).send()
    for v in state.versions:
        current = v is state.versions[-1]
        content, cards = view.version_markdown(v, current)
        elements = [cl.Text(name=card.name, content=card.markdown, display="side") for card in cards]
        await cl.Message(content=content, elements=elements, author="Room").send()
    for item in state.feedback:
        await cl.Message(content=view.feedback_markdown(item), author=item.author).send()
    if any(item.kind != "comment" for item in state.feedback):
        full = await store().state(seat.room_id, seat.username)
        await cl.Message(content=view.tally_markdown(full.feedback), author="Room").send()
    if not state.room.is_open and seat.cursor.status != "closed":
        await cl.Message(content=f"The facilitator ({state.room.facilitator}) has closed this room. "
                                 "It is read-only now; use **Export** for the DOCX and Markdown files.", author="Room").send()


def _push(room_id: str, notice: str | None = None, exclude: str | None = None) -> list[asyncio.Task]:
    return hub.notify(room_id, _load, _render, notice=notice, exclude=exclude)


# --- messages -----------------------------------------------------------------------------------
async def handle_message(message: cl.Message) -> bool:
    """Handle room commands and contributions; False when the chat's own flow should answer."""
    username = _username()
    command, text = message.command, message.content or ""
    typed = TYPED.match(text.strip())
    if not command and typed and typed.group(1).capitalize() in {c["id"] for c in ROOM_COMMANDS + OUTSIDE_COMMANDS}:
        command, text = typed.group(1).capitalize(), typed.group(2)
    seat = hub.seat(cl.context.session.id)
    try:
        if seat is None:
            return await _outside(command, text, username)
        await _inside(seat, command, text, message)
    except RoomError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
    except Exception:
        log.exception("Room action %r failed", command)
        await cl.ErrorMessage(content="Something went wrong in the room; the details are in the server log. Try again.").send()
    return True


async def _outside(command: str | None, text: str, username: str) -> bool:
    if command == "Room":
        room = await store().create_room(text, username)
        await store().set_focus(username, room.id)
        await enter(room)
    elif command == "Join":
        room = await store().join(text, username)
        await store().set_focus(username, room.id)
        await enter(room)
    elif command == "Rooms":
        mine = await store().rooms_of(username)
        lines = [f"- {view.escape_md(r.topic)} ({r.status}) — {view.room_link(_base_url(), r)}" for r in mine]
        await cl.Message(content="\n".join(["**Your rooms**", ""] + lines) if lines
                         else "You are in no room yet: create one with **Room** or join one with **Join**.").send()
    else:
        return False
    return True


def _section_and_rest(text: str, example: str) -> tuple[str, str]:
    match = re.match(r"^\s*(?:section\s*)?(\d+|[A-Za-z][\w ]*?)\s*(?:[:,.\-–—]\s*|\s+|$)(.*)$", text.strip(), re.S | re.I)
    section = canonical_section(match.group(1)) if match else None
    if section is None:
        numbered = ", ".join(f"{i} {name}" for i, name in enumerate(SECTIONS, start=1))
        raise RoomError(f"Start with the section number, e.g. “{example}”. Sections: {numbered}.")
    return section, match.group(2).strip()


async def _inside(seat: Seat, command: str | None, text: str, message: cl.Message) -> None:
    username, room_id = seat.username, seat.room_id
    if command in ("Proposal", "Objection", "Experience", "Position") or command is None:
        kind = (command or "position").lower()
        prefixed = PREFIX.match(text) if command is None else None
        if prefixed:
            kind, text = prefixed.group(1).lower(), prefixed.group(2)
        if message.elements and not text.strip():
            raise RoomError("Files are not contributions. Leave the room, upload the file in a chat, then **Share** it here.")
        await store().add_contribution(room_id, username, kind, text, origin=seat.session_id)
        _push(room_id)
    elif command == "Synthesise":
        await _draft(seat, "synthesis", None, "")
    elif command == "Revise":
        section, request = _section_and_rest(text, "6 make step 2 concrete for small organisations")
        await _draft(seat, "revision", section, request)
    elif command in ("Comment", "Endorse", "Object"):
        section, rest = _section_and_rest(text, "6 " + ("too vague" if command != "Endorse" else ""))
        kind = {"Comment": "comment", "Endorse": "endorse", "Object": "object"}[command]
        await store().add_feedback(room_id, username, kind, section, rest)
        _push(room_id)
    elif command == "Share":
        await _share(seat, text.strip())
    elif command == "Export":
        await send_exports(room_id, username)
    elif command == "Close":
        await store().close_room(room_id, username)
        await asyncio.gather(*_push(room_id))
        await send_exports(room_id, username)
    elif command == "Leave":
        await store().set_focus(username, None)
        hub.leave(seat.session_id)
        cl.user_session.set("room_id", None)
        await cl.context.emitter.set_commands(_outside_commands(username))
        await cl.Message(content="You left the room view; you are still a member. Open it again with **Rooms** or its link.").send()
    else:
        await cl.Message(content=view.HELP, author="Room").send()


async def _draft(seat: Seat, kind: str, section: str | None, request: str) -> None:
    """Run a synthesis or a revision and store it as the next version; every member sees it appear."""
    lock = hub.room_lock(seat.room_id)
    if lock.locked():
        raise RoomError("A synthesis or revision is already running in this room; its draft will appear here shortly.")
    engine = app_state().engine
    async with lock:
        what = "a synthesis" if kind == "synthesis" else f"a revision of section {section}: “{request}”"
        _push(seat.room_id, notice=f"**{seat.username}** asked for {what}. Working on it…", exclude=seat.session_id)
        progress = cl.Message(content=f"Working on {what} (the library is searched and every citation checked)…", author="Room")
        await progress.send()

        async def compose(latest):
            current = await store().state(seat.room_id, seat.username)
            if kind == "synthesis":
                return await synthesis.synthesise(engine, current.room.topic, current.contributions, seat.username, current.shared)
            if latest is None:
                raise RoomError("There is no draft to revise yet: ask for a synthesis first.")
            people = [m.username for m in current.members]
            return await synthesis.revise(engine, current.room.topic, latest, section, request, seat.username,
                                          current.shared, people)
        try:
            _version, notices = await store().add_version(seat.room_id, seat.username, compose)
        finally:
            await progress.remove()
        for notice in notices:
            await cl.Message(content=f"> {notice}", author="Room").send()
        _push(seat.room_id)


async def _share(seat: Seat, name: str) -> None:
    if not name:
        raise RoomError("Type the file name of one of your uploads after **Share**.")
    mine = [d for d in app_state().visible_documents(seat.username) if d.owner == seat.username]
    doc = next((d for d in mine if d.source_file == name or d.title == name), None)
    if doc is None:
        names = ", ".join(d.source_file for d in mine) or "none"
        raise RoomError(f"You have no upload named {name!r}. Your uploads: {names}.")
    await store().share_document(seat.room_id, seat.username, doc.doc_id)
    _push(seat.room_id, notice=f"**{seat.username}** shared *{view.escape_md(doc.title)}* into the room: "
                                "syntheses may now cite it.")
    await cl.Message(content=f"*{view.escape_md(doc.title)}* is shared into this room.", author="Room").send()


async def send_exports(room_id: str, username: str) -> None:
    state = await store().state(room_id, username)
    docx = await asyncio.to_thread(room_to_docx, state)
    markdown = room_to_markdown(state).encode("utf-8")
    files = [
        cl.File(name=room_filename(state, "docx"), content=docx, display="inline",
                mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        cl.File(name=room_filename(state, "md"), content=markdown, display="inline", mime="text/markdown"),
    ]
    sources = len(state.current.citations) if state.current else 0
    await cl.Message(content=f"Room export: the draft, its {sources} sources, the contributors and the appendix.",
                     elements=files, author="Room").send()


# --- HTTP routes --------------------------------------------------------------------------------
def install_routes(app) -> None:
    """``/policylab/rooms/join/<code>``, ``/policylab/rooms/<id>`` and ``…/<id>/export.(docx|md)``; members only."""
    from chainlit.auth import authenticate_user, get_token_from_cookies

    async def current_user(request: Request) -> str | None:
        token = get_token_from_cookies(dict(request.cookies))
        if not token:
            return None
        try:
            user = await authenticate_user(token)
        except HTTPException:
            return None
        return user.identifier if user else None

    not_member = "This room does not exist or you are not one of its members: ask its facilitator for the join code."

    async def join_link(code: str, request: Request):
        username = await current_user(request)
        if username is None:  # log in first; the first chat after login joins
            response = RedirectResponse("/login", status_code=303)
            response.set_cookie(JOIN_COOKIE, code.upper()[:16], max_age=600, httponly=True, samesite="lax")
            return response
        try:
            room = await store().join(code, username)
            await store().set_focus(username, room.id)
        except RoomError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(JOIN_COOKIE)
        return response

    async def open_room(room_id: str, request: Request):
        username = await current_user(request)
        if username is None:
            return RedirectResponse("/login", status_code=303)
        try:
            await store().set_focus(username, room_id)
        except AccessDenied as exc:
            raise HTTPException(status_code=404, detail=not_member) from exc
        return RedirectResponse("/", status_code=303)

    async def export(room_id: str, fmt: str, request: Request):
        username = await current_user(request)
        if username is None:
            raise HTTPException(status_code=401, detail="Log in first.")
        try:
            state = await store().state(room_id, username)
        except AccessDenied as exc:
            raise HTTPException(status_code=404, detail=not_member) from exc
        if fmt == "docx":
            content = await asyncio.to_thread(room_to_docx, state)
            mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        elif fmt == "md":
            content, mime = room_to_markdown(state).encode("utf-8"), "text/markdown"
        else:
            raise HTTPException(status_code=404, detail="Export as export.docx or export.md.")
        disposition = f'attachment; filename="{room_filename(state, fmt)}"'
        return Response(content, media_type=mime, headers={"Content-Disposition": disposition})

    app.add_api_route(ROUTES + "/join/{code}", join_link, methods=["GET"])
    app.add_api_route(ROUTES + "/{room_id}/export.{fmt}", export, methods=["GET"])
    app.add_api_route(ROUTES + "/{room_id}", open_room, methods=["GET"])
    routes = app.router.routes
    for _ in range(3):  # before Chainlit's catch-all page route
        routes.insert(0, routes.pop())
