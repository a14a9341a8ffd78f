"""What a room shows in the chat, as Markdown: header, contributions, draft versions, feedback.

Pure functions (no Chainlit import); :mod:`assistant.app.rooms` sends what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from assistant.citations import Citation
from assistant.rooms.draft import SECTIONS, split_sections
from assistant.rooms.models import Contribution, Feedback, Member, Room, RoomState, Version, tally

from assistant.app.render import CitationCard, card_markdown, citation_label, escape_md

KIND_LABELS = {"position": "Position", "proposal": "Proposal", "objection": "Objection", "experience": "Experience"}
HELP = (
    "Type to post a **position** (the default); start with `proposal:`, `objection:` or `experience:` for the other kinds, "
    "or pick them in the commands menu. Commands: **Synthesise** (draft from all contributions), **Comment** / **Endorse** / "
    "**Object** with a section number (e.g. `6 too vague for festivals`), **Revise** with a section number and the change "
    "(e.g. `6 make step 2 concrete for small organisations`), **Share** one of your uploads by file name, **Export**, "
    "**Leave**; the facilitator also has **Close**."
)


def citation_of(data: dict[str, Any]) -> Citation:
    names = {f.name for f in fields(Citation)}
    return Citation(**{k: v for k, v in data.items() if k in names})


def join_link(base_url: str, room: Room) -> str:
    return f"{base_url.rstrip('/')}/policylab/rooms/join/{room.code}"


def room_link(base_url: str, room: Room) -> str:
    return f"{base_url.rstrip('/')}/policylab/rooms/{room.id}"


def header(room: Room, members: Sequence[Member], present: Sequence[str], base_url: str) -> str:
    status = "open" if room.is_open else "closed — read-only, exportable"
    names = ", ".join(f"{m.username}{' (facilitator)' if m.role == 'facilitator' else ''}" for m in members)
    return "\n".join([
        f"## Room: {escape_md(room.topic)}",
        "",
        f"Join code **{room.code}** · join link {join_link(base_url, room)} · status: {status}",
        "",
        f"Room link (members only): {room_link(base_url, room)}",
        "",
        f"**Members:** {names}",
        "",
        f"**Present now:** {', '.join(present) or '—'}",
    ])


def presence_line(present: Sequence[str]) -> str:
    return f"**Present now:** {', '.join(present) or '—'}"


def contribution_markdown(c: Contribution) -> str:
    return f"**{escape_md(c.author)}** · {KIND_LABELS.get(c.kind, c.kind)}\n\n{c.text}"


def _numbered_headings(body: str) -> str:
    preamble, sections = split_sections(body)
    parts = [preamble] if preamble else []
    for section in sections:
        number = SECTIONS.index(section.name) + 1 if section.name in SECTIONS else "·"
        parts.append(f"#### {number} · {section.name}\n{section.text}")
    return "\n\n".join(parts)


def sources_markdown(citations: Sequence[dict[str, Any]]) -> str:
    if not citations:
        return "*No citation: nothing in the room's library supports this draft yet.*"
    lines = ["**Sources**", ""]
    first_of: dict[str, int] = {}
    for data in citations:
        c = citation_of(data)
        if c.doc_id in first_of:  # the title once per document, as in answers
            lines.append(f"- [{c.n}] same document as [{first_of[c.doc_id]}], {escape_md(c.location or 'another passage')}")
            continue
        first_of[c.doc_id] = c.n
        lines.append(f"- [{c.n}] *{escape_md(c.title)}* — {escape_md(citation_label(c))}")
    return "\n".join(lines)


def tally_markdown(feedback: Sequence[Feedback]) -> str:
    votes = tally(list(feedback))
    if not votes:
        return ""
    lines = ["**Endorsements and objections**", ""]
    for section in SECTIONS:
        if section in votes:
            v = votes[section]
            lines.append(f"- {SECTIONS.index(section) + 1} · {section}: {len(v['endorse'])} endorse"
                         f"{' (' + ', '.join(v['endorse']) + ')' if v['endorse'] else ''}, {len(v['object'])} object"
                         f"{' (' + ', '.join(v['object']) + ')' if v['object'] else ''}")
    return "\n".join(lines)


def version_markdown(version: Version, current: bool = True) -> tuple[str, list[CitationCard]]:
    """A version: its origin, the diff against the previous one, and (for the current one) the full draft."""
    origin = (f"synthesis asked by {version.author}" if version.kind == "synthesis"
              else f"revision of section {version.section} asked by {version.author}: “{escape_md(version.request)}”")
    parts = [f"### Draft — version {version.number}", f"*{origin} · {version.backend}*"]
    if version.number > 1 and version.diff:
        parts.append(f"**Changes against version {version.number - 1}**\n\n```diff\n{version.diff}\n```")
    cards: list[CitationCard] = []
    if current:
        parts.append(_numbered_headings(version.body))
        parts.append(sources_markdown(version.citations))
        cards = [CitationCard(f"[{c['n']}]", card_markdown(citation_of(c))) for c in version.citations]
        checked = len(version.citations)
        parts.append(f"*{checked} citation{'s' if checked != 1 else ''} checked against the sources*")
    return "\n\n".join(parts), cards


def feedback_markdown(item: Feedback) -> str:
    verb = {"comment": "comments on", "endorse": "endorses", "object": "objects to"}[item.kind]
    number = SECTIONS.index(item.section) + 1 if item.section in SECTIONS else "·"
    text = f": {item.text}" if item.text else ""
    return f"**{escape_md(item.author)}** {verb} section {number} · {item.section} (version {item.version}){text}"


def summary_line(state: RoomState) -> str:
    current = state.current
    draft = f"draft version {current.number}" if current else "no draft yet"
    return f"{len(state.contributions)} contributions · {draft} · {len(state.members)} members"
