"""Export an answer, brief or draft as DOCX (python-docx) or Markdown, with its numbered sources.

An export is built from an :class:`ExportDoc`: plain data kept in the message's metadata, so a
chat resumed from history can still be exported. Every source carries title, publisher, year,
page or section and the exact quote that was verified.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from assistant.answer import Answer

MODE_TITLES = {"ask": "Answer", "brief": "Briefing note", "draft": "Draft recommendation", "synthesis": "Synthesis"}
EXTRACTIVE_LABEL = re.compile(r"^\*[^*\n]+\*$")
INLINE = re.compile(r"(\*\*[^*\n]+\*\*|\*[^*\n]+\*|\[[^\]\n]+\]\([^)\n]*\))")
LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")


@dataclass
class ExportSource:
    n: int
    title: str
    publisher: str
    year: int | None
    location: str
    quote: str
    source_file: str
    page: int | None = None

    @property
    def reference(self) -> str:
        parts = [self.publisher, str(self.year) if self.year else "n.d.", self.location]
        return f"{self.title} — " + ", ".join(p for p in parts if p)


@dataclass
class ExportDoc:
    mode: str
    question: str
    body: str
    sources: list[ExportSource] = field(default_factory=list)
    backend: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def title(self) -> str:
        return MODE_TITLES.get(self.mode, "Answer")

    @classmethod
    def from_answer(cls, answer: Answer, question: str) -> "ExportDoc":
        sources = [
            ExportSource(c.n, c.title, c.publisher, c.year, c.location or "", c.quote, c.source_file, c.page)
            for c in answer.citations
        ]
        return cls(answer.mode, question, answer.answer, sources, answer.backend)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExportDoc":
        sources = [ExportSource(**s) for s in data.get("sources", [])]
        return cls(data.get("mode", "ask"), data.get("question", ""), data.get("body", ""), sources,
                   data.get("backend", ""), data.get("created") or "")

    def filename(self, suffix: str) -> str:
        words = re.findall(r"[A-Za-z0-9]+", self.question.lower())[:6]
        stem = "-".join([self.mode] + words) or "policylab"
        return f"policylab-{stem}.{suffix}"


def to_markdown(doc: ExportDoc) -> str:
    lines = [f"# {doc.title}", "", f"**Request:** {doc.question}", "", f"*Policy Lab Assistant, {doc.created}*", "",
             doc.body.strip(), ""]
    if doc.sources:
        lines += ["## Sources", ""]
        for s in doc.sources:
            lines.append(f"{s.n}. {s.reference}  ")
            lines.append(f"   > {' '.join(s.quote.split())}")
            lines.append(f"   `{s.source_file}`")
            lines.append("")
    else:
        lines += ["*No source in the library supports an answer; nothing is cited.*", ""]
    return "\n".join(lines)


def _plain(text: str) -> str:
    return MD_ESCAPE.sub(r"\1", LINK.sub(r"\1", text))


def _add_markdown_body(document, body: str) -> None:
    """The answer's or draft's Markdown as Word headings, bullet and numbered lists, and paragraphs."""
    for raw in body.strip().splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        bullet = re.match(r"^\s*[-*•]\s+(.*)$", line)
        numbered = re.match(r"^\s*\d+[.)]\s+(.*)$", line)
        if heading:
            document.add_heading(_plain(heading.group(2)).strip("* "), level=min(len(heading.group(1)), 3))
        elif bullet:
            _add_inline(document.add_paragraph(style="List Bullet"), bullet.group(1))
        elif numbered:
            _add_inline(document.add_paragraph(style="List Number"), numbered.group(1))
        elif EXTRACTIVE_LABEL.match(line.strip()):
            document.add_paragraph().add_run(line.strip().strip("*")).italic = True
        else:
            _add_inline(document.add_paragraph(), line)


def _add_inline(paragraph, text: str) -> None:
    """Runs for **bold**, *italic* and [links](…) (kept as their text); everything else plain."""
    for piece in INLINE.split(text):
        if not piece:
            continue
        if piece.startswith("**") and piece.endswith("**") and len(piece) > 4:
            paragraph.add_run(_plain(piece[2:-2])).bold = True
        elif piece.startswith("*") and piece.endswith("*") and len(piece) > 2:
            paragraph.add_run(_plain(piece[1:-1])).italic = True
        else:
            paragraph.add_run(_plain(piece))


def to_docx(doc: ExportDoc) -> bytes:
    """A Word document: title, request, the text with its headings and lists, then the numbered sources."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.core_properties.title = f"{doc.title}: {doc.question}"[:250]
    document.core_properties.author = "Policy Lab Assistant"
    document.add_heading(doc.title, level=0)
    request = document.add_paragraph()
    request.add_run("Request: ").bold = True
    request.add_run(doc.question)
    meta = document.add_paragraph()
    meta.add_run(f"Policy Lab Assistant, {doc.created}" + (f" · {doc.backend}" if doc.backend else "")).italic = True

    _add_markdown_body(document, doc.body)

    document.add_heading("Sources", level=1)
    if not doc.sources:
        document.add_paragraph("No source in the library supports an answer; nothing is cited.")
    for s in doc.sources:
        entry = document.add_paragraph()
        entry.add_run(f"[{s.n}] ").bold = True
        entry.add_run(s.reference)
        quote = document.add_paragraph(style="Quote")
        quote.add_run(f"\u201c{' '.join(s.quote.split())}\u201d")
        file_line = document.add_paragraph()
        run = file_line.add_run(s.source_file)
        run.font.size = Pt(8)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- co-drafting rooms --------------------------------------------------------------------------
def _room_sources(state) -> list[ExportSource]:
    current = state.current
    return [
        ExportSource(c["n"], c["title"], c.get("publisher", ""), c.get("year"),
                     f"p. {c['page']}" if c.get("page") is not None else _short_section(c), c["quote"],
                     c["source_file"], c.get("page"))
        for c in (current.citations if current else [])
    ]


def _short_section(c: dict[str, Any]) -> str:
    from assistant.types import short_section

    return short_section(c.get("section", ""), c.get("title", "")) or "whole document"


def room_filename(state, suffix: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", state.room.topic.lower())[:6]
    return f"policylab-room-{'-'.join(words) or state.room.code.lower()}.{suffix}"


def _room_contributors(state) -> list[str]:
    counts: dict[str, int] = {}
    for c in state.contributions:
        counts[c.author] = counts.get(c.author, 0) + 1
    lines = []
    for m in state.members:
        role = " (facilitator)" if m.role == "facilitator" else ""
        n = counts.get(m.username, 0)
        lines.append(f"{m.username}{role} — {n} contribution{'s' if n != 1 else ''}")
    return lines


def _room_tally_lines(state) -> list[str]:
    from assistant.rooms.draft import SECTIONS

    votes = state.tally()
    lines = []
    for section in SECTIONS:
        v = votes.get(section, {"endorse": [], "object": []})
        lines.append(f"{SECTIONS.index(section) + 1}. {section}: {len(v['endorse'])} endorse"
                     f"{' (' + ', '.join(v['endorse']) + ')' if v['endorse'] else ''}, {len(v['object'])} object"
                     f"{' (' + ', '.join(v['object']) + ')' if v['object'] else ''}")
    return lines


def _room_meta(state) -> str:
    current = state.current
    status = f"closed {state.room.closed_at[:16].replace('T', ' ')} UTC" if state.room.closed_at else "open (draft in progress)"
    version = f"version {current.number} ({current.backend})" if current else "no draft"
    return (f"Topic: {state.room.topic} · facilitator {state.room.facilitator} · room {status} · {version} · "
            f"exported {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def room_to_markdown(state) -> str:
    """A room's final draft as Markdown: text, numbered sources, contributors, appendix of contributions and tally."""
    current = state.current
    lines = ["# Joint recommendation", "", f"*{_room_meta(state)}*", ""]
    lines += [current.body.strip() if current else "*No draft was synthesised in this room.*", ""]
    sources = _room_sources(state)
    lines += ["## Sources", ""]
    for s in sources:
        lines += [f"{s.n}. {s.reference}  ", f"   > {' '.join(s.quote.split())}", f"   `{s.source_file}`", ""]
    if not sources:
        lines += ["*Nothing is cited.*", ""]
    lines += ["## Contributors", ""] + [f"- {line}" for line in _room_contributors(state)] + [""]
    lines += ["## Appendix A — Contributions", ""]
    for i, c in enumerate(state.contributions, start=1):
        lines.append(f"{i}. **{c.author}** ({c.kind}, {c.created_at[:16].replace('T', ' ')}): {' '.join(c.text.split())}")
    lines += ["", "## Appendix B — Endorsements and objections", ""] + [f"- {line}" for line in _room_tally_lines(state)]
    comments = [f for f in state.feedback if f.kind == "comment"]
    if comments:
        lines += ["", "Comments:", ""] + [f"- {f.author} on {f.section} (version {f.version}): {f.text}" for f in comments]
    lines += ["", "## Appendix C — Versions", ""]
    for v in state.versions:
        what = "synthesis" if v.kind == "synthesis" else f"revision of {v.section}: “{v.request}”"
        lines.append(f"- Version {v.number}: {what} — asked by {v.author} ({v.created_at[:16].replace('T', ' ')})")
    return "\n".join(lines).rstrip() + "\n"


def room_to_docx(state) -> bytes:
    """The same content as :func:`room_to_markdown`, as a Word document."""
    from docx import Document
    from docx.shared import Pt

    current = state.current
    document = Document()
    document.core_properties.title = f"Joint recommendation: {state.room.topic}"[:250]
    document.core_properties.author = "Policy Lab Assistant"
    document.add_heading("Joint recommendation", level=0)
    document.add_paragraph().add_run(_room_meta(state)).italic = True
    if current is None:
        document.add_paragraph("No draft was synthesised in this room.")
    _add_markdown_body(document, current.body if current else "")
    document.add_heading("Sources", level=1)
    sources = _room_sources(state)
    if not sources:
        document.add_paragraph("Nothing is cited.")
    for s in sources:
        entry = document.add_paragraph()
        entry.add_run(f"[{s.n}] ").bold = True
        entry.add_run(s.reference)
        document.add_paragraph(style="Quote").add_run(f"\u201c{' '.join(s.quote.split())}\u201d")
        document.add_paragraph().add_run(s.source_file).font.size = Pt(8)
    document.add_heading("Contributors", level=1)
    for line in _room_contributors(state):
        document.add_paragraph(line, style="List Bullet")
    document.add_heading("Appendix A — Contributions", level=1)
    for c in state.contributions:
        item = document.add_paragraph(style="List Number")
        item.add_run(f"{c.author}").bold = True
        item.add_run(f" ({c.kind}, {c.created_at[:16].replace('T', ' ')}): {' '.join(c.text.split())}")
    document.add_heading("Appendix B — Endorsements and objections", level=1)
    for line in _room_tally_lines(state):
        document.add_paragraph(line, style="List Bullet")
    for f in (f for f in state.feedback if f.kind == "comment"):
        document.add_paragraph(f"Comment by {f.author} on {f.section} (version {f.version}): {f.text}")
    document.add_heading("Appendix C — Versions", level=1)
    for v in state.versions:
        what = "synthesis" if v.kind == "synthesis" else f"revision of {v.section}: \u201c{v.request}\u201d"
        document.add_paragraph(f"Version {v.number}: {what} — asked by {v.author}", style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
