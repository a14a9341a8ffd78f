"""Data passed between the ingest stages: pages in, chunks out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class IngestError(Exception):
    """A file cannot be ingested; ``reason`` is shown to the user next to the file name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Page:
    """One page of a document (``number`` is None for formats without pages).

    ``text`` is the cleaned text: quotes and character offsets always refer to it.
    """

    number: int | None
    text: str


@dataclass
class LoadedDocument:
    """A parsed file: its pages and whatever metadata the file itself carries."""

    path: Path
    pages: list[Page]
    file_metadata: dict[str, Any] = field(default_factory=dict)
    unreadable_pages: list[int] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def paginated(self) -> bool:
        return any(p.number is not None for p in self.pages)


@dataclass
class Chunk:
    """A retrievable passage: ``text == page.text[char_start:char_end]`` of its page.

    Chunks never cross a page boundary, so a page number and two offsets locate any quote.
    ``section`` is the heading path, e.g. "Chapter IV › Article 9 — Information sharing".
    """

    chunk_id: str
    doc_id: str
    text: str
    section: str
    page: int | None
    page_index: int
    char_start: int
    char_end: int
    ordinal: int
    tokens: int

    @property
    def embed_text(self) -> str:
        """The text given to the embedder and to BM25: heading path, then the passage."""
        return f"{self.section}\n{self.text}" if self.section else self.text
