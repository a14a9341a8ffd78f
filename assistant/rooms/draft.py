"""The draft structure of a joint recommendation, and edits that keep its citations consistent.

A draft is Markdown: an optional preamble (e.g. the extractive label), then one ``## heading``
per section in :data:`SECTIONS` order. Its ``[n]`` markers refer to a list of verified citation
dicts (:meth:`assistant.citations.Citation.to_dict`); :func:`renumber` keeps only the cited ones,
numbered by first appearance, so the sources list never shows a citation the text dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assistant.citations import MARKER

SECTIONS = (
    "Title", "Recommendation", "Rationale", "Principles it draws on", "Past challenges it addresses",
    "Implementation steps", "Points of agreement", "Points of disagreement", "Open questions",
)
HEADING = re.compile(r"^#{1,4}\s+(.+?)\s*#*\s*$")


@dataclass
class Section:
    name: str
    text: str


def canonical_section(name: str) -> str | None:
    """The :data:`SECTIONS` name that ``name`` means (a number 1-9, a heading, or its first word), or None."""
    wanted = " ".join(re.sub(r"[*_:§#]", " ", name or "").split()).lower()
    if not wanted:
        return None
    if wanted.isdigit():
        index = int(wanted)
        return SECTIONS[index - 1] if 1 <= index <= len(SECTIONS) else None
    for section in SECTIONS:
        if section.lower() == wanted:
            return section
    for section in SECTIONS:
        low = section.lower()
        if low.startswith(wanted) or wanted.startswith(low) or (len(wanted) >= 4 and wanted in low):
            return section
    aliases = {"steps": "Implementation steps", "principles": "Principles it draws on", "challenges": "Past challenges it addresses",
               "agreement": "Points of agreement", "disagreement": "Points of disagreement", "questions": "Open questions"}
    for word, section in aliases.items():
        if word in wanted:
            return section
    return None


def split_sections(body: str) -> tuple[str, list[Section]]:
    """(preamble, sections) of a Markdown draft; headings are matched to :data:`SECTIONS` where possible."""
    preamble: list[str] = []
    sections: list[Section] = []
    for line in body.splitlines():
        match = HEADING.match(line)
        if match:
            name = canonical_section(match.group(1)) or match.group(1).strip("* ")
            sections.append(Section(name, ""))
        elif sections:
            sections[-1].text += line + "\n"
        else:
            preamble.append(line)
    for section in sections:
        section.text = section.text.strip()
    return "\n".join(preamble).strip(), sections


def join_sections(preamble: str, sections: list[Section]) -> str:
    parts = [preamble.strip()] if preamble.strip() else []
    parts += [f"## {s.name}\n{s.text.strip()}" for s in sections]
    return "\n\n".join(parts).strip() + "\n"


def section_text(body: str, name: str) -> str:
    for section in split_sections(body)[1]:
        if section.name == name:
            return section.text
    return ""


def markers_in(text: str) -> list[int]:
    found: list[int] = []
    for match in MARKER.finditer(text):
        found += [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
    return found


def renumber(body: str, citations: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Keep the cited citations only, numbered 1.. by first appearance in ``body``; same quote, same number."""
    by_n = {c["n"]: c for c in citations}
    new_numbers: dict[int, int] = {}
    by_key: dict[tuple, int] = {}
    kept: list[dict[str, Any]] = []
    for n in markers_in(body):
        if n in new_numbers or n not in by_n:
            continue
        c = by_n[n]
        key = (c.get("chunk_id"), c.get("quote_start"), c.get("quote_end"))
        if key in by_key:
            new_numbers[n] = by_key[key]
            continue
        kept.append(dict(c, n=len(kept) + 1))
        by_key[key] = new_numbers[n] = len(kept)

    def replace(match: re.Match) -> str:
        numbers = [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
        mapped = list(dict.fromkeys(new_numbers[n] for n in numbers if n in new_numbers))
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return lead + "".join(f"[{n}]" for n in mapped) if mapped else ""

    return MARKER.sub(replace, body), kept


def offset_markers(text: str, offset: int) -> str:
    """``[n]`` → ``[n + offset]`` (to append a section's own citations to the draft's list)."""
    def replace(match: re.Match) -> str:
        numbers = [int(x) + offset for x in re.split(r"\s*[,;]\s*", match.group(1))]
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return lead + "".join(f"[{n}]" for n in numbers)
    return MARKER.sub(replace, text)


def replace_section(body: str, citations: list[dict[str, Any]], name: str, new_text: str,
                    new_citations: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """``body`` with section ``name`` replaced by ``new_text`` (whose markers number ``new_citations``)."""
    preamble, sections = split_sections(body)
    offset = max((c["n"] for c in citations), default=0)
    shifted = offset_markers(new_text.strip(), offset)
    merged = list(citations) + [dict(c, n=c["n"] + offset) for c in new_citations]
    for section in sections:
        if section.name == name:
            section.text = shifted
            break
    else:
        sections.append(Section(name, shifted))
        order = {s: i for i, s in enumerate(SECTIONS)}
        sections.sort(key=lambda s: order.get(s.name, len(order)))
    return renumber(join_sections(preamble, sections), merged)
