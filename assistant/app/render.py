"""Turn a verified :class:`~assistant.answer.Answer` into what the chat shows.

The message keeps the answer's ``[n]`` markers; each marker is the name of a side element
(a citation card with title, publisher, year, page or section and the exact quote), so
Chainlit turns it into a link that opens the card in the side panel. A citation to a page of
a PDF also gets a PDF element opened at that page. Only the answer's verified citations are
ever shown: what was retrieved but not cited stays out.

The functions here are pure (no Chainlit import) except :func:`to_elements`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.answer import Answer
from assistant.citations import Citation
from assistant.types import DocumentInfo, Passage

from assistant.app.datalayer import DOCS_PREFIX

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def escape_md(text: str) -> str:
    """``text`` with Markdown's special characters escaped (titles and publishers are data, not markup)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


@dataclass
class CitationCard:
    """A side element: its name is the marker (``[1]``) that opens it."""

    name: str
    markdown: str


@dataclass
class PdfLink:
    """A PDF element opened at the cited page; ``url`` serves the library's copy of the document."""

    name: str
    url: str
    page: int


@dataclass
class RenderedAnswer:
    content: str
    cards: list[CitationCard] = field(default_factory=list)
    pdfs: list[PdfLink] = field(default_factory=list)


def citation_label(c: Citation) -> str:
    """"Publisher, 2024, p. 3" (the parts that exist)."""
    parts = [c.publisher or "", str(c.year) if c.year else "n.d.", c.location or ""]
    return ", ".join(p for p in parts if p)


def card_markdown(c: Citation) -> str:
    """The side panel of one citation: title, publisher, year, page or section, then the exact quote."""
    where = f"p. {c.page}" if c.page is not None else (c.location or "whole document")
    lines = [
        f"**{escape_md(c.title)}**",
        "",
        f"{escape_md(c.publisher or 'Publisher not recorded')} · {c.year or 'n.d.'} · {escape_md(where)}",
        "",
        "> " + escape_md(c.quote).replace("\n", "\n> "),
        "",
        f"`{c.source_file}`",
    ]
    return "\n".join(lines)


def demote_headings(text: str, by: int = 2) -> str:
    """Headings two levels smaller: a chat message is not a page (exports keep the original levels)."""
    return re.sub(r"^(#{1,6})(?=\s)", lambda m: "#" * min(len(m.group(1)) + by, 6), text, flags=re.M)


def is_pdf(info: DocumentInfo | None) -> bool:
    return info is not None and Path(info.source_file).suffix.lower() == ".pdf" and bool(info.path)


def pdf_name(n: int, page: int) -> str:
    return f"PDF {n}, p. {page}"


def render_answer(answer: Answer, document: Callable[[str], DocumentInfo | None] = lambda _doc_id: None) -> RenderedAnswer:
    """The message text (answer, notices, numbered sources) and its side elements.

    ``document(doc_id)`` gives a cited document's record, to offer its PDF at the cited page.
    """
    parts: list[str] = []
    for notice in answer.notices:
        parts.append(f"> {notice}")
    parts.append(demote_headings(answer.answer.strip()))
    cards: list[CitationCard] = []
    pdfs: list[PdfLink] = []
    if answer.citations:
        lines = ["", "**Sources**", ""]
        first_of: dict[str, int] = {}
        for c in answer.citations:
            cards.append(CitationCard(f"[{c.n}]", card_markdown(c)))
            if c.doc_id in first_of:  # the title once per document: later entries point back to it
                line = f"- [{c.n}] same document as [{first_of[c.doc_id]}], {escape_md(c.location or 'another passage')}"
            else:
                first_of[c.doc_id] = c.n
                line = f"- [{c.n}] *{escape_md(c.title)}* — {escape_md(citation_label(c))}"
            if c.page is not None and is_pdf(document(c.doc_id)):
                link = PdfLink(pdf_name(c.n, c.page), f"{DOCS_PREFIX}/{c.doc_id}", c.page)
                pdfs.append(link)
                line += f" · {link.name}"
            lines.append(line)
        parts.append("\n".join(lines))
        v = answer.verification
        checked = f"{len(answer.citations)} citation{'s' if len(answer.citations) != 1 else ''} checked against the sources"
        if v.removed:
            checked += f"; {v.removed} unsupported removed"
        parts.append(f"*{checked} · {answer.backend}*")
    return RenderedAnswer("\n\n".join(p for p in parts if p), cards, pdfs)


def sources_found(passages: Sequence[Passage]) -> tuple[str, str]:
    """Step title and body listing what retrieval found (shown before the answer is written).

    The title keeps to letters, digits, spaces and hyphens: Chainlit asks for an avatar by the step's name.
    """
    docs = {p.doc_id for p in passages}
    if not passages:
        return "Sources found - none", "Nothing in the library matches this question (check the filters in the settings)."
    title = f"Sources found - {len(passages)} passages in {len(docs)} document{'s' if len(docs) != 1 else ''}"
    lines = [f"- *{escape_md(p.title)}* ({p.year or 'n.d.'}), {escape_md(p.location)}" for p in passages]
    return title, "\n".join(lines)


def to_elements(rendered: RenderedAnswer) -> list:
    """Chainlit elements for a rendered answer (call inside a Chainlit context)."""
    import chainlit as cl

    elements: list = [cl.Text(name=card.name, content=card.markdown, display="side") for card in rendered.cards]
    elements += [cl.Pdf(name=pdf.name, url=pdf.url, page=pdf.page, display="side") for pdf in rendered.pdfs]
    return elements
