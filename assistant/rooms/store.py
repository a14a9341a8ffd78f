"""Room state in the app's database (the chat history's URL: SQLite by default, PostgreSQL by URL).

Every write is one transaction. Contributions and feedback are append-only rows with
database-assigned ids, so concurrent posters never overwrite each other. Draft versions are
numbered per room under a unique ``(room_id, number)`` constraint: two writers that race for
the same number cannot both win; the loser recomputes on top of the winner's version and
retries (:meth:`RoomStore.add_version`). SQLite's "database is locked" is retried the same way.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Column, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text, UniqueConstraint, and_, func,
    insert, select, update, delete,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from assistant.rooms.models import (
    FEEDBACK_KINDS, KINDS, AccessDenied, Contribution, Feedback, Member, NewVersion, Room, RoomError, RoomState,
    SharedDocument, Version,
)

log = logging.getLogger(__name__)

MAX_TEXT = 4000
MAX_TOPIC = 300
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are read aloud
CODE_LENGTH = 6
WRITE_ATTEMPTS = 12
T = TypeVar("T")

metadata = MetaData()
rooms = Table(
    "rooms", metadata,
    Column("id", String(32), primary_key=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("facilitator", String(64), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("created_at", String(40), nullable=False),
    Column("closed_at", String(40)),
)
members = Table(
    "room_members", metadata,
    Column("room_id", String(32), nullable=False),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("joined_at", String(40), nullable=False),
    PrimaryKeyConstraint("room_id", "username"),
)
contributions = Table(
    "room_contributions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", String(32), nullable=False),
    Column("author", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("origin", String(64)),
    Column("created_at", String(40), nullable=False),
    Index("room_contributions_room", "room_id", "id"),
)
versions = Table(
    "room_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", String(32), nullable=False),
    Column("number", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("citations", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("author", String(64), nullable=False),
    Column("request", Text),
    Column("section", String(80)),
    Column("diff", Text),
    Column("backend", String(80)),
    Column("contributions_upto", Integer),
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("room_id", "number", name="room_versions_number"),
)
feedback = Table(
    "room_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", String(32), nullable=False),
    Column("author", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("section", String(80), nullable=False),
    Column("text", Text),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Index("room_feedback_room", "room_id", "id"),
)
shared_docs = Table(
    "room_documents", metadata,
    Column("room_id", String(32), nullable=False),
    Column("doc_id", String(128), nullable=False),
    Column("shared_by", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    PrimaryKeyConstraint("room_id", "doc_id"),
)
focus = Table(  # the room a user last opened: a new chat of that user opens in it
    "room_focus", metadata,
    Column("username", String(64), primary_key=True),
    Column("room_id", String(32), nullable=False),
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def unified_diff(before: str, after: str, old: int, new: int) -> str:
    """A unified diff of two draft texts, line by line."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), f"version {old}", f"version {new}", lineterm="")
    return "\n".join(lines)


def _locked(exc: OperationalError) -> bool:
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


class RoomStore:
    """Async access to the room tables; one instance per process (or per client in tests)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> "RoomStore":
        """A store on the database at ``url`` (an SQLAlchemy async URL, as ``Settings.history_url``)."""
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}  # wait for other writers instead of failing at once
        return cls(create_async_engine(url, **kwargs))

    async def ensure_schema(self) -> None:
        """Create the room tables if they do not exist (idempotent; safe beside the chat-history tables)."""
        async def create(conn: AsyncConnection) -> None:
            await conn.run_sync(metadata.create_all)
        await self._write(create)

    async def close(self) -> None:
        await self.engine.dispose()

    # --- transactions -------------------------------------------------------------------------
    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, retried when SQLite reports a lock held by another writer."""
        return await self._retrying(self.engine.begin, work, jitter=0.05)

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await self._retrying(self.engine.connect, work, jitter=0.0)

    @staticmethod
    async def _retrying(connect: Callable[[], Any], work: Callable[[AsyncConnection], Awaitable[T]], jitter: float) -> T:
        """``work`` on a connection from ``connect``, retried with backoff while SQLite reports a lock."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                async with connect() as conn:
                    return await work(conn)
            except OperationalError as exc:
                if not _locked(exc) or attempt == WRITE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.02 * (attempt + 1) + random.random() * jitter)
        raise AssertionError("unreachable")

    # --- rooms and members --------------------------------------------------------------------
    async def create_room(self, topic: str, facilitator: str) -> Room:
        """A new open room; ``facilitator`` is its first member."""
        topic = " ".join((topic or "").split())
        if len(topic) < 3:
            raise RoomError("Give the room a topic, e.g. “fairer artist mobility between Asia and Europe”.")
        if len(topic) > MAX_TOPIC:
            raise RoomError(f"The topic is longer than {MAX_TOPIC} characters; shorten it.")
        for _ in range(20):
            room = Room(secrets.token_hex(8), "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
                        topic, facilitator, "open", now())

            async def create(conn: AsyncConnection) -> Room:
                await conn.execute(insert(rooms).values(id=room.id, code=room.code, topic=room.topic,
                                                        facilitator=facilitator, status="open", created_at=room.created_at))
                await conn.execute(insert(members).values(room_id=room.id, username=facilitator, role="facilitator",
                                                          joined_at=room.created_at))
                return room
            try:
                return await self._write(create)
            except IntegrityError:
                continue  # the join code exists already: draw another
        raise RoomError("Could not draw a free join code; try again.")

    async def join(self, code: str, username: str) -> Room:
        """Add ``username`` to the room of join code ``code`` (joining twice is harmless)."""
        wanted = "".join((code or "").split()).upper()

        async def work(conn: AsyncConnection) -> Room:
            row = (await conn.execute(select(rooms).where(rooms.c.code == wanted))).first()
            if row is None:
                raise RoomError(f"No room has the join code {wanted or '(empty)'}; check the code with the facilitator.")
            room = Room(**row._mapping)
            if not room.is_open:
                raise RoomError("This room is closed: it no longer takes members. Ask the facilitator for its export.")
            exists = (await conn.execute(select(members.c.username).where(
                and_(members.c.room_id == room.id, members.c.username == username)))).first()
            if exists is None:
                await conn.execute(insert(members).values(room_id=room.id, username=username, role="participant",
                                                          joined_at=now()))
            return room
        try:
            return await self._write(work)
        except IntegrityError:  # the same user joined from two tabs at once
            return await self.room_for(await self._room_id_of(wanted), username)

    async def _room_id_of(self, code: str) -> str:
        async def work(conn: AsyncConnection) -> str:
            return (await conn.execute(select(rooms.c.id).where(rooms.c.code == code))).scalar_one()
        return await self._read(work)

    async def room_for(self, room_id: str, username: str) -> Room:
        """The room, if ``username`` is a member; else :class:`AccessDenied` (the same for rooms that do not exist)."""
        async def work(conn: AsyncConnection) -> Room:
            return await self._member_room(conn, room_id, username)
        return await self._read(work)

    @staticmethod
    async def _member_room(conn: AsyncConnection, room_id: str, username: str) -> Room:
        row = (await conn.execute(
            select(rooms).join(members, members.c.room_id == rooms.c.id)
            .where(and_(rooms.c.id == room_id, members.c.username == username))
        )).first()
        if row is None:
            raise AccessDenied("This room does not exist or you are not one of its members: "
                               "ask its facilitator for the join code.")
        return Room(**row._mapping)

    async def _open_member_room(self, conn: AsyncConnection, room_id: str, username: str) -> Room:
        room = await self._member_room(conn, room_id, username)
        if not room.is_open:
            raise RoomError("The facilitator has closed this room: it is read-only now. You can still export it.")
        return room

    async def rooms_of(self, username: str) -> list[Room]:
        async def work(conn: AsyncConnection) -> list[Room]:
            rows = await conn.execute(select(rooms).join(members, members.c.room_id == rooms.c.id)
                                      .where(members.c.username == username).order_by(rooms.c.created_at))
            return [Room(**r._mapping) for r in rows]
        return await self._read(work)

    async def close_room(self, room_id: str, username: str) -> Room:
        """Close the room (facilitator only); it stays readable and exportable by its members."""
        async def work(conn: AsyncConnection) -> Room:
            room = await self._member_room(conn, room_id, username)
            if room.facilitator != username:
                raise AccessDenied(f"Only the facilitator ({room.facilitator}) can close this room.")
            if room.is_open:
                await conn.execute(update(rooms).where(rooms.c.id == room_id).values(status="closed", closed_at=now()))
            row = (await conn.execute(select(rooms).where(rooms.c.id == room_id))).first()
            return Room(**row._mapping)
        return await self._write(work)

    # --- contributions and feedback -----------------------------------------------------------
    async def add_contribution(self, room_id: str, author: str, kind: str, text: str, origin: str | None = None) -> Contribution:
        kind = kind.lower()
        if kind not in KINDS:
            raise RoomError(f"A contribution is one of: {', '.join(KINDS)}.")
        text = (text or "").strip()
        if not any(ch.isalpha() for ch in text):
            raise RoomError("The contribution is empty: write your position, proposal, objection or experience.")
        if len(text) > MAX_TEXT:
            raise RoomError(f"The contribution is longer than {MAX_TEXT} characters; split it in two.")

        async def work(conn: AsyncConnection) -> Contribution:
            await self._open_member_room(conn, room_id, author)
            created = now()
            result = await conn.execute(insert(contributions).values(
                room_id=room_id, author=author, kind=kind, text=text, origin=origin, created_at=created))
            return Contribution(result.inserted_primary_key[0], author, kind, text, created, origin)
        return await self._write(work)

    async def add_feedback(self, room_id: str, author: str, kind: str, section: str, text: str = "") -> Feedback:
        """A comment on, an endorsement of or an objection to a section of the current version."""
        if kind not in FEEDBACK_KINDS:
            raise RoomError(f"Feedback is one of: {', '.join(FEEDBACK_KINDS)}.")
        if kind == "comment" and not (text or "").strip():
            raise RoomError("The comment is empty: write it after the section number, e.g. “6 too vague for festivals”.")

        async def work(conn: AsyncConnection) -> Feedback:
            await self._open_member_room(conn, room_id, author)
            number = (await conn.execute(select(func.max(versions.c.number)).where(versions.c.room_id == room_id))).scalar()
            if not number:
                raise RoomError("There is no draft yet: ask for a synthesis first.")
            created = now()
            result = await conn.execute(insert(feedback).values(room_id=room_id, author=author, kind=kind, section=section,
                                                                text=(text or "").strip()[:MAX_TEXT], version=number,
                                                                created_at=created))
            return Feedback(result.inserted_primary_key[0], author, kind, section, (text or "").strip(), number, created)
        return await self._write(work)

    # --- versions -----------------------------------------------------------------------------
    async def add_version(self, room_id: str, username: str,
                          compose: Callable[[Version | None], Awaitable[NewVersion]]) -> tuple[Version, list[str]]:
        """Write the next version: ``compose(latest)`` builds it, the store numbers it and diffs it.

        If another writer stored a version meanwhile, ``compose`` runs again on top of that one, so no
        version is lost and every diff is against its real predecessor.
        """
        for attempt in range(WRITE_ATTEMPTS):
            latest = await self.latest_version(room_id, username)
            new = await compose(latest)

            async def work(conn: AsyncConnection) -> Version:
                await self._open_member_room(conn, room_id, username)
                current = (await conn.execute(select(func.max(versions.c.number))
                                              .where(versions.c.room_id == room_id))).scalar() or 0
                if current != (latest.number if latest else 0):
                    raise _Moved()
                number = current + 1
                diff = unified_diff(latest.body if latest else "", new.body, current, number)
                created = now()
                await conn.execute(insert(versions).values(
                    room_id=room_id, number=number, body=new.body, citations=json.dumps(new.citations, ensure_ascii=False),
                    kind=new.kind, author=new.author, request=new.request, section=new.section, diff=diff,
                    backend=new.backend, contributions_upto=new.contributions_upto, created_at=created))
                return Version(number, new.body, new.citations, new.kind, new.author, new.request, new.section, diff,
                               new.backend, new.contributions_upto, created)
            try:
                return await self._write(work), new.notices
            except (IntegrityError, _Moved):
                log.info("Room %s: another version landed first; recomposing (attempt %d)", room_id, attempt + 1)
        raise RoomError("The draft changed too often while this version was being written; try again.")

    async def latest_version(self, room_id: str, username: str) -> Version | None:
        async def work(conn: AsyncConnection) -> Version | None:
            await self._member_room(conn, room_id, username)
            row = (await conn.execute(select(versions).where(versions.c.room_id == room_id)
                                      .order_by(versions.c.number.desc()).limit(1))).first()
            return Version.from_row(row) if row else None
        return await self._read(work)

    # --- shared documents and focus -----------------------------------------------------------
    async def share_document(self, room_id: str, username: str, doc_id: str) -> None:
        """Let the room's syntheses use ``doc_id`` (the caller checks that ``username`` owns it)."""
        async def work(conn: AsyncConnection) -> None:
            await self._open_member_room(conn, room_id, username)
            exists = (await conn.execute(select(shared_docs.c.doc_id).where(
                and_(shared_docs.c.room_id == room_id, shared_docs.c.doc_id == doc_id)))).first()
            if exists is None:
                await conn.execute(insert(shared_docs).values(room_id=room_id, doc_id=doc_id, shared_by=username,
                                                              created_at=now()))
        await self._write(work)

    async def set_focus(self, username: str, room_id: str | None) -> None:
        """Remember the room ``username`` works in (None: leave it); new chats open there."""
        async def work(conn: AsyncConnection) -> None:
            await conn.execute(delete(focus).where(focus.c.username == username))
            if room_id is not None:
                await self._member_room(conn, room_id, username)
                await conn.execute(insert(focus).values(username=username, room_id=room_id))
        await self._write(work)

    async def focus_of(self, username: str) -> str | None:
        async def work(conn: AsyncConnection) -> str | None:
            return (await conn.execute(select(focus.c.room_id).where(focus.c.username == username))).scalar()
        return await self._read(work)

    # --- reading the state --------------------------------------------------------------------
    async def state(self, room_id: str, username: str, after: "Cursor | None" = None) -> RoomState:
        """The room as ``username`` sees it; with ``after``, only what is newer than that cursor."""
        after = after or Cursor()

        async def work(conn: AsyncConnection) -> RoomState:
            room = await self._member_room(conn, room_id, username)
            member_rows = await conn.execute(select(members).where(members.c.room_id == room_id).order_by(members.c.joined_at))
            contribution_rows = await conn.execute(select(contributions).where(
                and_(contributions.c.room_id == room_id, contributions.c.id > after.contribution)).order_by(contributions.c.id))
            version_rows = await conn.execute(select(versions).where(
                and_(versions.c.room_id == room_id, versions.c.number > after.version)).order_by(versions.c.number))
            feedback_rows = await conn.execute(select(feedback).where(
                and_(feedback.c.room_id == room_id, feedback.c.id > after.feedback)).order_by(feedback.c.id))
            doc_rows = await conn.execute(select(shared_docs).where(shared_docs.c.room_id == room_id))
            return RoomState(
                room=room,
                members=[Member(r.username, r.role, r.joined_at) for r in member_rows],
                contributions=[Contribution(r.id, r.author, r.kind, r.text, r.created_at, r.origin) for r in contribution_rows],
                versions=[Version.from_row(r) for r in version_rows],
                feedback=[Feedback(r.id, r.author, r.kind, r.section, r.text or "", r.version, r.created_at) for r in feedback_rows],
                shared=[SharedDocument(r.doc_id, r.shared_by, r.created_at) for r in doc_rows],
            )
        return await self._read(work)


class _Moved(Exception):
    """Another version was stored between reading the latest and writing the next."""


class Cursor:
    """What a session has already shown: the highest contribution id, version number and feedback id."""

    def __init__(self, contribution: int = 0, version: int = 0, feedback: int = 0, status: str = "") -> None:
        self.contribution, self.version, self.feedback, self.status = contribution, version, feedback, status

    def advance(self, state: RoomState) -> None:
        if state.contributions:
            self.contribution = max(self.contribution, state.contributions[-1].id)
        if state.versions:
            self.version = max(self.version, state.versions[-1].number)
        if state.feedback:
            self.feedback = max(self.feedback, state.feedback[-1].id)
        self.status = state.room.status
