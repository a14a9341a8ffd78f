"""What of a chat model's reply the citation check reads, and how the checked text is laid out.

The engine sends a reply through :func:`checkable` (the "not in the library" sentinel, strictness, repeats) before
:meth:`~assistant.citations.CitationVerifier.verify`, then through :func:`with_title_as_heading` (briefs and drafts)
and :func:`without_empty_sections`; a translation goes through :func:`without_preamble`. ``eval.drafts`` runs the
same steps on recorded replies.
"""

from __future__ import annotations

import re

from assistant.citations import MARKER, UNSOURCED, without_repeats
from assistant.prompts import NOT_IN_LIBRARY


def without_sentinel(draft: str) -> str:
    """The model's draft without NOT_IN_LIBRARY lines; empty if that is all it wrote.

    A model that writes a cited answer and then adds the sentinel has not abstained: its cited
    sentences still go to the verifier, which keeps only what the passages support.
    """
    kept = without_sentinel_lines(draft)
    return kept if re.search(r"\[\d+\]", kept) else ""


def without_sentinel_lines(draft: str) -> str:
    """The draft without NOT_IN_LIBRARY lines, whether it cites or not."""
    return "\n".join(line for line in draft.splitlines() if NOT_IN_LIBRARY not in line).strip()


def checkable(reply: str) -> tuple[str, bool, bool]:
    """What of a model's ``reply`` the citation check reads, whether strictly, and whether the reply only declined.

    The "not in the library" sentinel goes; a reply with no [n] at all (small models forget them in long briefs) is
    still checked, strictly: a sentence a passage supports gets that citation, any other statement is dropped. A reply
    that is only the sentinel declined. Then statements said twice go (``without_repeats``); whether the check is
    strict is read before, since a reply may hold its markers only in the copies.
    """
    declined = NOT_IN_LIBRARY in reply and not without_sentinel_lines(reply)
    draft, strict = without_sentinel(reply), False
    if not draft:
        draft = without_sentinel_lines(reply)
        strict = bool(draft)
    return without_repeats(draft), strict, declined


TITLED_MODES = ("brief", "draft")  # a room's synthesis keeps its "## Title" section: the room's draft is built on it
TITLE_WORDS = (3, 20)  # a title's length in words
TITLE_HEADINGS = frozenset({"title", "titre", "título", "titulo", "titel", "tiêu đề"})


def with_title_as_heading(text: str) -> str:
    """A checked brief or draft with its title made a Markdown heading: the first line, or the line under a "## Title"
    heading (the draft prompt asks for one; "## Titre", "## Título"…), when it reads as a title ("A Joint
    Recommendation on Cultural Goods in Trade Agreements", "**Briefing note: …**": no sentence end, not a list item, a
    few words) and more follows. A title claims nothing, yet as plain text the check marks it † as the model's own
    statement; one the check found a passage for keeps its citation and stays as it is."""
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 2:
        return text
    first = filled[0]
    label = re.sub(r"^#{1,6}\s*|[*_:]", "", lines[first]).strip().lower()
    under_label = lines[first].lstrip().startswith("#") and label in TITLE_HEADINGS
    at = filled[1] if under_label else first
    line = lines[at].strip().removesuffix(UNSOURCED).rstrip()
    title = re.sub(r"^(\*\*|__)(.+)\1$", r"\2", line).strip()
    if (at == filled[-1] or line.startswith("#") or re.match(r"^([-*•+]\s|\d+[.)]\s)", line) or MARKER.search(line)
            or re.search(r"[.!?;:…]$", title) or not TITLE_WORDS[0] <= len(title.split()) <= TITLE_WORDS[1]):
        return text
    lines[at] = f"# {title}"
    return "\n".join(lines[:first] + lines[at:] if under_label else lines)


def without_empty_sections(text: str) -> str:
    """``text`` without Markdown headings that nothing follows before the next heading of the same or a higher
    level (the check removed everything under them: "## Context" over a dropped sentence)."""
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        heading = re.match(r"^(#{1,6})\s", line)
        if heading:
            following = next((later for later in lines[i + 1:] if later.strip()), None)
            level = len(heading.group(1))
            next_heading = re.match(r"^(#{1,6})\s", following) if following is not None else None
            if following is None or (next_heading and len(next_heading.group(1)) <= level):
                continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def without_preamble(reply: str, source: str) -> str:
    """``reply`` without an opening line such as "Here is the translation into German:" that ``source`` lacks."""
    lines = reply.strip().splitlines()
    first_source = next((line.strip() for line in source.splitlines() if line.strip()), "")
    if lines and lines[0].rstrip().endswith(":") and not re.search(r"\[\d+\]", lines[0]) \
            and not first_source.endswith(":"):
        lines = lines[1:]
    return "\n".join(lines).strip()
