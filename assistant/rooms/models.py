"""Plain data of a co-drafting room, as read from the database (no Chainlit, no SQL here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("position", "proposal", "objection", "experience")
VOTES = ("endorse", "object")
FEEDBACK_KINDS = ("comment",) + VOTES


class RoomError(ValueError):
    """A room action that cannot be done; the message says what to do instead."""


class AccessDenied(RoomError):
    """The user may not see or change this room (not a member, or not its facilitator)."""


@dataclass(frozen=True)
class Room:
    id: str
    code: str
    topic: str
    facilitator: str
    status: str  # open | closed
    created_at: str
    closed_at: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class Member:
    username: str
    role: str  # facilitator | participant
    joined_at: str


@dataclass(frozen=True)
class Contribution:
    id: int
    author: str
    kind: str
    text: str
    created_at: str
    origin: str | None = None  # the session that posted it (so that session does not echo it back)

    def to_request(self) -> dict[str, str]:
        """The shape :class:`assistant.answer.AnswerRequest` takes in ``contributions``."""
        return {"author": self.author, "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class Version:
    number: int
    body: str
    citations: list[dict[str, Any]]
    kind: str  # synthesis | revision
    author: str
    request: str
    section: str | None
    diff: str
    backend: str
    contributions_upto: int
    created_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Version":
        return cls(row.number, row.body, json.loads(row.citations or "[]"), row.kind, row.author, row.request or "",
                   row.section, row.diff or "", row.backend or "", row.contributions_upto or 0, row.created_at)


@dataclass(frozen=True)
class Feedback:
    id: int
    author: str
    kind: str  # comment | endorse | object
    section: str
    text: str
    version: int
    created_at: str


@dataclass(frozen=True)
class SharedDocument:
    doc_id: str
    shared_by: str
    created_at: str


@dataclass
class NewVersion:
    """What a synthesis or a revision computed; the store numbers it and writes the diff."""

    body: str
    citations: list[dict[str, Any]]
    kind: str
    author: str
    request: str = ""
    section: str | None = None
    backend: str = ""
    contributions_upto: int = 0
    notices: list[str] = field(default_factory=list)


@dataclass
class RoomState:
    """Everything a member sees: what a late joiner or a reconnecting session is shown."""

    room: Room
    members: list[Member]
    contributions: list[Contribution]
    versions: list[Version]
    feedback: list[Feedback]
    shared: list[SharedDocument]

    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def tally(self) -> dict[str, dict[str, list[str]]]:
        """Per section, who endorses and who objects (each member's latest vote counts)."""
        return tally(self.feedback)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tally(feedback: list[Feedback]) -> dict[str, dict[str, list[str]]]:
    latest: dict[tuple[str, str], str] = {}
    for item in feedback:
        if item.kind in VOTES:
            latest[(item.section, item.author)] = item.kind
    result: dict[str, dict[str, list[str]]] = {}
    for (section, author), vote in sorted(latest.items()):
        result.setdefault(section, {"endorse": [], "object": []})[vote].append(author)
    return result
