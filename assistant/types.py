"""Data shared by retrieval, answering and the app."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def short_section(section: str, title: str) -> str:
    """The heading path without the document's own title at its head."""
    parts = [p for p in section.split(" › ") if p]
    if parts and title and parts[0].strip().lower() == title.strip().lower():
        parts = parts[1:]
    return " › ".join(parts)


@dataclass
class DocumentInfo:
    """One indexed document and its metadata (a row of the library)."""

    doc_id: str
    source_file: str
    title: str
    publisher: str = ""
    year: int | None = None
    doc_type: str = ""
    country: str = ""
    region: str = ""
    language: str = ""
    content_hash: str = ""
    pages: int = 0
    chunks: int = 0
    paginated: bool = False
    owner: str = ""  # "" = shared library; otherwise the user who uploaded it (private)
    path: str = ""
    status: str = "complete"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Passage:
    """A retrieved chunk with its document's metadata and its ranking evidence.

    ``text == page_text(doc_id, page_index)[char_start:char_end]``.
    """

    chunk_id: str
    doc_id: str
    text: str
    source_file: str
    title: str
    publisher: str
    year: int | None
    doc_type: str
    country: str
    region: str
    language: str
    page: int | None
    page_index: int
    section: str
    char_start: int
    char_end: int
    score: float = 0.0
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """"p. 3" for paginated documents, else the section label."""
        if self.page is not None:
            return f"p. {self.page}"
        return short_section(self.section, self.title) or "whole document"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["location"] = self.location
        return data
