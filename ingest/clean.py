"""Text clean-up used by the loaders: pure functions, one job each.

Which loader applies what:

* TXT / MD: ``normalise_newlines`` and ``drop_web_furniture`` only. Both remove or
  re-end whole lines and never touch wording, so quotes stay exact substrings.
* PDF: ``drop_repeated_lines`` over the raw page texts, then ``repair_pdf_text`` per
  page. Running headers and footers are removed first because the repair joins
  wrapped lines, and a footer glued to a paragraph could no longer be recognised.
* HTML: ``drop_web_furniture`` on the extracted text.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# --------------------------------------------------------------------------- line endings


def normalise_newlines(text: str) -> str:
    """Turn ``\\r\\n`` and lone ``\\r`` line endings into ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- PDF text repair

# A hyphen at a line end is a word break ("cultu-\nral" -> "cultural") unless the page
# itself spells the word with a hyphen elsewhere and never without, the part before it is
# one of these prefixes that normally take a hyphen ("cross-border", "self-reliance",
# "non-state"), or the next line starts with a capital or a digit ("Asia-Europe",
# "10-13"). A kept hyphen still joins the two lines, without a space.
COMPOUND_PREFIXES = frozenset(
    {"all", "co", "cross", "ex", "high", "long", "low", "non", "people", "peer", "self", "short", "well"}
)

_SPACE_RUN = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_LINE_END_HYPHEN = re.compile(r"([^\W_]+)-\n(?=(\S)([^\W\d_]*))")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_TERMINAL = ".,;:!?…"
_SENTENCE_END = re.compile(r"[.:;!?…][\"”’')\]]*$")
_NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.)\s+\S")
_LIST_ITEM = re.compile(r"^(?:[•▪◦‣●○■\-–*]|\(?(?:\d{1,3}|[a-z]|[ivx]{1,4})[.)])\s+\S")
_TOC_ENTRY = re.compile(r"(?:\.\s*){3,}\d+$")  # "2.1 Scope . . . . 12"
_HEADING_MAX = 80
_SHORT_LINE = 60


def repair_pdf_text(text: str) -> str:
    """Repair text extracted from one PDF page (or OCR'd from it).

    Collapses runs of spaces, strips each line, joins words broken with a hyphen at a
    line end (see ``COMPOUND_PREFIXES`` for the hyphens that are kept), and joins
    hard-wrapped lines of a paragraph into one line. Blank-line paragraph breaks are
    kept (as one blank line), and so are heading lines and list items (see
    ``_unwrap_block``).
    """
    text = normalise_newlines(text).replace("\u00ad\n", "").replace("\u00ad", "")
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    vocabulary = {word.casefold() for word in _WORD.findall(text)}
    text = _LINE_END_HYPHEN.sub(lambda match: _join_hyphenated(match, vocabulary), text)
    blocks = (_unwrap_block(block) for block in re.split(r"\n{2,}", text))
    return "\n\n".join(block for block in blocks if block)


def _join_hyphenated(match: re.Match[str], vocabulary: set[str]) -> str:
    head, next_char = match.group(1), match.group(2)
    tail = next_char + match.group(3)
    hyphenated = f"{head}-{tail}".casefold() in vocabulary
    joined = f"{head}{tail}".casefold() in vocabulary
    if next_char.islower() and not (hyphenated and not joined) and head.casefold() not in COMPOUND_PREFIXES:
        return head  # the line break and the hyphen go
    return f"{head}-"  # the line break goes, the hyphen stays


def _unwrap_block(block: str) -> str:
    """Join the wrapped lines of one block; headings, contents entries and list items keep their own line."""
    lines = [line for line in block.split("\n") if line]
    out: list[str] = []
    after_heading = False
    for i, line in enumerate(lines):
        prev = lines[i - 1] if i else None
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        heading = bool(_TOC_ENTRY.search(line)) or _is_heading(line, prev, nxt)
        if not out or heading or after_heading or _LIST_ITEM.match(line):
            out.append(line)
        else:
            out[-1] = f"{out[-1]} {line}"
        after_heading = heading
    return "\n".join(out)


def _is_heading(line: str, prev: str | None, nxt: str | None) -> bool:
    """Whether ``line`` looks like a heading inside a block of wrapped lines.

    ALL CAPS lines are headings anywhere. A short line (a numbered one like "2.1 Scope"
    may be a little longer) without final punctuation is a heading when it starts the
    block or follows a finished sentence, and ends the block or is followed by a line
    starting with a capital or a digit.
    """
    letters = [c for c in line if c.isalpha()]
    if len(line) <= _HEADING_MAX and len(letters) >= 2 and all(c.isupper() for c in letters):
        return True
    limit = _HEADING_MAX if _NUMBERED_HEADING.match(line) else _SHORT_LINE
    if len(line) > limit or line.endswith(tuple(_TERMINAL)):
        return False
    starts_unit = prev is None or bool(_SENTENCE_END.search(prev))
    ends_unit = nxt is None or nxt[0].isupper() or nxt[0].isdigit()
    return starts_unit and ends_unit


# --------------------------------------------------------------------------- running headers and footers

_EDGE_LINES = 3
_MIN_PAGES = 3
_REPEAT_SHARE = 0.6
_PAGE_NUMBER = re.compile(
    r"^(?:page\s*)?[-–—(\[]?\s*\d{1,4}\s*[-–—)\]]?(?:\s*(?:/|of)\s*\d{1,4})?$|^(?-i:[ivxlc]{1,6})$",
    re.IGNORECASE,
)


def drop_repeated_lines(pages: list[str]) -> list[str]:
    """Remove running headers, footers and bare page numbers from page texts.

    Only the first and last three non-blank lines of a page are candidates. A line is a
    running header or footer when, with digits replaced by ``#`` ("Page 3 of 10" ~
    "Page # of #"), it is among those lines on at least 60% of the pages, and there are
    at least three pages. Bare page-number lines ("7", "- 7 -", "Page 7", "7 / 10", and
    lowercase roman "iv") are removed from those positions on any page.
    """
    split = [normalise_newlines(page).split("\n") for page in pages]
    edges = [_edge_indices(lines) for lines in split]
    repeated: set[str] = set()
    if len(pages) >= _MIN_PAGES:
        counts = Counter(key for lines, idx in zip(split, edges) for key in {_line_key(lines[i]) for i in idx})
        threshold = max(2, math.ceil(_REPEAT_SHARE * len(pages)))
        repeated = {key for key, count in counts.items() if key and count >= threshold}
    cleaned = []
    for lines, idx in zip(split, edges):
        drop = {i for i in idx if _line_key(lines[i]) in repeated or _PAGE_NUMBER.match(lines[i].strip())}
        cleaned.append("\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n"))
    return cleaned


def _edge_indices(lines: list[str]) -> set[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:])


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


# --------------------------------------------------------------------------- web page furniture

# Whole lines (compared stripped and case-insensitively) that are never content.
_FURNITURE_LINE = re.compile(
    r"^(?:advertisements?|sponsored(?: content)?|skip to (?:main )?content|back to top|scroll to top)$",
    re.IGNORECASE,
)
# Rows made only of share-button labels: "Facebook X Pinterest", "Email", "Send by Email".
_SHARE_LABEL = (
    r"facebook|twitter|x|pinterest|linkedin|whatsapp|telegram|reddit|messenger|zalo|e-?mail|"
    r"send by e-?mail|share(?: (?:this|on))?(?: (?:article|page|story|post))?|tweet|print|copy link"
)
_SHARE_ROW = re.compile(rf"^(?:(?:{_SHARE_LABEL})[\s|·•,/:]*)+$", re.IGNORECASE)
# Cookie banners: a line of at most 300 characters that starts like one and mentions cookies.
_COOKIE_START = re.compile(
    r"^(?:we use cookies|this (?:web ?)?site uses cookies|our (?:web ?)?site uses cookies|"
    r"by (?:continuing|using)\b.{0,60}\byou (?:agree|consent)|accept (?:all )?cookies|"
    r"cookie (?:settings|preferences|policy|consent)|manage cookies)",
    re.IGNORECASE,
)
_COOKIE_MAX = 300
# A trailing list of links to other articles, dropped only at the very end of the text:
# this heading, then nothing but at most 15 short lines (titles) until the end.
_RELATED_HEADING = re.compile(
    r"^#{0,6}\s*(?:related (?:news|articles|posts|stories|content)|read more|more news|you may also like)\s*:?$",
    re.IGNORECASE,
)
_RELATED_MAX_LINES = 15
_RELATED_MAX_CHARS = 150


def drop_web_furniture(text: str) -> str:
    """Remove whole lines that are web-page furniture; every other line is kept verbatim.

    Dropped: ``ADVERTISEMENT``-style lines, rows of share-button labels ("Facebook X
    Pinterest", "Email", "Send by Email", "Share", "Tweet", "Print"), cookie-banner
    lines, and a trailing "RELATED NEWS" / "Related Articles" heading together with
    the short title lines after it when they end the text. Lines are matched whole, so
    a sentence that merely mentions Facebook or an advertisement is kept.
    """
    lines = normalise_newlines(text).split("\n")
    kept = [line for line in lines if not _is_furniture(line.strip())]
    kept = _drop_trailing_related(kept)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _is_furniture(line: str) -> bool:
    if not line:
        return False
    if _FURNITURE_LINE.match(line):
        return True
    if _SHARE_ROW.match(line) and line.casefold() != "x":
        return True
    return len(line) <= _COOKIE_MAX and "cookie" in line.casefold() and bool(_COOKIE_START.match(line))


def _drop_trailing_related(lines: list[str]) -> list[str]:
    for i in range(len(lines) - 1, -1, -1):
        if _RELATED_HEADING.match(lines[i].strip()):
            tail = [line for line in lines[i + 1 :] if line.strip()]
            if len(tail) <= _RELATED_MAX_LINES and all(len(line) <= _RELATED_MAX_CHARS for line in tail):
                return lines[:i]
            return lines
    return lines
