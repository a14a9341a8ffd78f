"""Token-sized chunks that respect headings and sentences and keep exact page offsets.

A page's text is cut into units (heading lines and sentences, with their character
spans). Units are packed into chunks of about ``chunk_tokens`` tiktoken tokens; a
heading always starts a new chunk and the heading path (e.g. "Chapter IV › Article 9")
travels with every chunk under it. Each chunk is ``page.text[char_start:char_end]``,
so a quote inside it can be located exactly. Chunks never cross a page boundary.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from assistant.tokens import count_tokens
from ingest.types import Chunk, LoadedDocument

MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?;])[\"'”’)\]]*\s+(?=[\"“‘(\[]?[A-ZÀ-ÖØ-Þ0-9*•-])")
CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+(?=[A-ZÀ-ÖØ-Þ])")  # ", Considering …", "; Recognizing …"
ANY_COMMA = re.compile(r"(?<=[,;:])\s+")
PLAIN_HEADING_MAX_WORDS = 10
PLAIN_HEADING_LEVEL = 7  # below any Markdown heading
SECTION_SEPARATOR = " › "
CHUNKER_VERSION = 3  # bump when the same text would be cut or embedded differently, so libraries are re-indexed
SENTENCE_SPLIT = re.compile(r"(?<=[.!?;:])\s+|\n+")
MIN_SENTENCE_WORDS = 8  # shorter pieces (list items, headings) join the next one


def chunking_signature(chunk_tokens: int, overlap: int) -> str:
    """What decides a document's chunks besides its content; stored per document."""
    return f"v{CHUNKER_VERSION}:{chunk_tokens}:{overlap}"


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    heading: tuple[int, str] | None = None


@dataclass
class _Packer:
    """Accumulates units of one page into chunks."""

    max_tokens: int
    overlap: int
    units: list[_Unit] = field(default_factory=list)
    spans: list[tuple[int, int, int, str]] = field(default_factory=list)  # start, end, tokens, section

    def add(self, unit: _Unit, section: str) -> None:
        tokens = sum(u.tokens for u in self.units)
        has_body = any(u.heading is None for u in self.units)
        if self.units and has_body and tokens + unit.tokens > self.max_tokens:
            self.close(section, keep_overlap=True)
        self.units.append(unit)

    def close(self, section: str, keep_overlap: bool = False) -> None:
        if not self.units:
            return
        if any(u.heading is None for u in self.units):
            start, end = self.units[0].start, self.units[-1].end
            self.spans.append((start, end, sum(u.tokens for u in self.units), section))
        carry: list[_Unit] = []
        if keep_overlap:
            budget = self.overlap
            for unit in reversed(self.units[1:]):
                if unit.heading is not None or unit.tokens > budget:
                    break
                carry.insert(0, unit)
                budget -= unit.tokens
        self.units = carry


def _split_clauses(text: str, start: int, max_tokens: int) -> list[_Unit]:
    """Cut an over-long sentence into clause units of at most ``max_tokens``.

    A convention's preamble is one sentence of many clauses (", Considering …, Recognizing …"):
    cutting it at clause boundaries, and packing the clauses like sentences (with overlap), keeps
    each clause whole in some chunk. Breaks before a capitalised word come first, then any comma or
    semicolon; a clause still too long is cut at word boundaries.
    """
    for pattern in (CLAUSE_BREAK, ANY_COMMA):
        cuts = [m.end() for m in pattern.finditer(text)]
        if cuts:
            units: list[_Unit] = []
            cursor = 0
            for cut in cuts + [len(text)]:
                clause = text[cursor:cut].rstrip()
                tokens = count_tokens(clause)
                if tokens > max_tokens:
                    units.extend(_split_clauses(clause, start + cursor, max_tokens))
                elif clause:
                    units.append(_Unit(start + cursor, start + cursor + len(clause), tokens))
                cursor = cut
            return units
    return _split_words(text, start, max_tokens)


def clause_bounds(text: str, max_tokens: int) -> list[tuple[int, int]]:
    """(start, end) of the clauses of an over-long sentence, each at most ``max_tokens`` (see ``_split_clauses``)."""
    return [(unit.start, unit.end) for unit in _split_clauses(text, 0, max_tokens)]


def _split_words(text: str, start: int, max_tokens: int) -> list[_Unit]:
    """Cut text at word boundaries into pieces of at most ``max_tokens``."""
    pieces: list[_Unit] = []
    words = list(re.finditer(r"\S+", text))
    first = 0
    while first < len(words):
        last = first
        while last + 1 < len(words) and count_tokens(text[words[first].start() : words[last + 1].end()]) <= max_tokens:
            last += 1
        span_start, span_end = words[first].start(), words[last].end()
        pieces.append(_Unit(start + span_start, start + span_end, count_tokens(text[span_start:span_end])))
        first = last + 1
    return pieces


def _is_plain_heading(line: str, next_line: str | None) -> bool:
    words = line.split()
    return (
        0 < len(words) <= PLAIN_HEADING_MAX_WORDS
        and line[-1] not in ".!?:;,\"'”’)…"
        and not any(mark in line for mark in '"“”')
        and (line[0].isupper() or line[0].isdigit())
        and next_line is not None
        and len(next_line) > len(line)
    )


def page_units(text: str, max_tokens: int, markdown: bool) -> list[_Unit]:
    """Split a page's text into heading and sentence units with exact spans."""
    lines = [(m.start(), m.group(0)) for m in re.finditer(r"[^\n]+", text)]
    units: list[_Unit] = []
    for index, (offset, raw) in enumerate(lines):
        stripped = raw.strip()
        if not stripped:
            continue
        lead = raw.index(stripped[0])
        line_start, line_end = offset + lead, offset + lead + len(stripped)
        heading = MD_HEADING.match(stripped) if markdown else None
        next_line = next((l.strip() for _, l in lines[index + 1 :] if l.strip()), None)
        if heading:
            units.append(_Unit(line_start, line_end, count_tokens(stripped), (len(heading.group(1)), heading.group(2))))
            continue
        if not markdown and _is_plain_heading(stripped, next_line):
            units.append(_Unit(line_start, line_end, count_tokens(stripped), (PLAIN_HEADING_LEVEL, stripped)))
            continue
        cursor = 0
        boundaries = [m.end() for m in SENTENCE_END.finditer(stripped)] + [len(stripped)]
        for boundary in boundaries:
            sentence = stripped[cursor:boundary].rstrip()
            if sentence:
                tokens = count_tokens(sentence)
                if tokens > max_tokens:
                    units.extend(_split_clauses(sentence, line_start + cursor, max_tokens))
                else:
                    units.append(_Unit(line_start + cursor, line_start + cursor + len(sentence), tokens))
            cursor = boundary
    return units


def chunk_document(
    doc: LoadedDocument, doc_id: str, content_hash: str, chunk_tokens: int = 220, overlap: int = 40
) -> list[Chunk]:
    """All chunks of ``doc`` in reading order."""
    markdown = doc.path.suffix.lower() in {".md", ".markdown", ".docx", ".html", ".htm"}
    stack: list[tuple[int, str]] = []
    chunks: list[Chunk] = []
    for page_index, page in enumerate(doc.pages):
        packer = _Packer(chunk_tokens, overlap)
        section = SECTION_SEPARATOR.join(t for _, t in stack)
        for unit in page_units(page.text, chunk_tokens, markdown):
            if unit.heading is not None:
                if any(u.heading is None for u in packer.units):
                    packer.close(section)
                level, title = unit.heading
                stack = [(lvl, t) for lvl, t in stack if lvl < level] + [(level, title)]
                section = SECTION_SEPARATOR.join(t for _, t in stack)
            packer.add(unit, section)
        packer.close(section)
        for start, end, tokens, label in packer.spans:
            text = page.text[start:end]
            digest = hashlib.sha1(f"{content_hash}:{page_index}:{start}:{end}".encode()).hexdigest()[:16]
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}-{digest}", doc_id=doc_id, text=text, section=label, page=page.number,
                    page_index=page_index, char_start=start, char_end=end, ordinal=len(chunks), tokens=tokens,
                )
            )
    return chunks


def sentence_units(text: str) -> list[str]:
    """A chunk's sentences (and clauses ended by ";" or ":", and lines), each of at least MIN_SENTENCE_WORDS
    words: a short piece joins the next, a short tail the last. Embedded on their own, they let a passage be
    found by its best sentence, not only by the average of all it says (a preamble of twenty "Recognizing…")."""
    units: list[str] = []
    pending = ""
    for piece in (p.strip() for p in SENTENCE_SPLIT.split(text)):
        if not piece:
            continue
        pending = f"{pending} {piece}".strip()
        if len(pending.split()) >= MIN_SENTENCE_WORDS:
            units.append(pending)
            pending = ""
    if pending:
        if units:
            units[-1] = f"{units[-1]} {pending}"
        else:
            units.append(pending)
    return units
