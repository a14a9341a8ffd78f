"""Data shared by retrieval, answering and the app."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any


WHOLE_DOCUMENT = "whole document"  # the location of a passage with neither page nor heading


# Lines of a plain-text capture that the chunker takes for headings but that label nothing: a caption,
# a table or name row, the second line of a logo block ("OF DENMARK"), a lead-in ("Co-funded by",
# "Here are some possible approaches:"), a dateline, a byline. They stay in the indexed text, never in a location.
CAPTION = re.compile(r"^\(?(image|photo|figure|source|credit|video)\s*:", re.IGNORECASE)  # "(Photo: …)", "Image: …"
_NOT_A_LABEL = re.compile(
    r"\t|(\bby|[:*])\s*$"
    r"|^(january|february|march|april|may|june|july|august|september|october|november|december)\s+\d{1,2},\s+\d{4}$"
    r"|^(dr|prof|mr|mrs|ms|h\.\s?e)\.?\s+[A-Z]",  # a byline: "Dr Claire Wilson"
    re.IGNORECASE,
)
_CONTINUATION = re.compile(r"^(OF|AND|BY|WITH)\s")  # capitals only: "Of mice and men" may be a title


def is_location_label(heading: str) -> bool:
    """Whether a heading of the path can tell a reader where a passage is (see ``CAPTION``, ``_NOT_A_LABEL``)."""
    heading = heading.strip()
    return not (CAPTION.match(heading) or _NOT_A_LABEL.search(heading) or _CONTINUATION.match(heading))


def short_section(section: str, title: str) -> str:
    """The heading path without the document's own title at its head, nor headings that label nothing."""
    parts = [p for p in section.split(" › ") if p]
    if parts and title and parts[0].strip().lower() == title.strip().lower():
        parts = parts[1:]
    return " › ".join(p for p in parts if is_location_label(p))


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
        return short_section(self.section, self.title) or WHOLE_DOCUMENT

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["location"] = self.location
        return data
