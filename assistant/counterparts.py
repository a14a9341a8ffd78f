"""The counterparts a request names: countries, regions and organisations of the library's metadata.

A brief "before a meeting with Vietnamese counterparts" should lead with what Vietnam's own
documents say. We match the request's words against each document's country, region and
publisher acronyms, tolerating demonyms and inflections ("Vietnamese", "vietnamiens" →
Vietnam; "UNESCO's" → UNESCO) by comparing word stems, and accent-insensitively.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from assistant.types import DocumentInfo

GENERIC_PLACES = frozenset({"global", "international", "world", "worldwide", "multilateral"})
ACRONYM = re.compile(r"\b[A-Z]{3,}\b")


def fold(text: str) -> str:
    """Lower case without accents."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _stem(word: str) -> str:
    return word if len(word) < 5 else word[: max(4, len(word) - 2)]


def _named(value: str, words: Sequence[str], exact: bool = False) -> bool:
    """Every word of ``value`` appears in ``words`` (as a stem prefix unless ``exact``)."""
    parts = [p for p in re.findall(r"\w+", fold(value)) if len(p) >= 3]
    if not parts or all(p in GENERIC_PLACES for p in parts):
        return False
    for part in parts:
        if exact or len(part) < 5:
            if part not in words:
                return False
        elif not any(w.startswith(_stem(part)) for w in words):
            return False
    return True


def counterpart_names(info: DocumentInfo) -> list[tuple[str, bool]]:
    """(name, exact) pairs a request may use for this document's country, region or publisher."""
    names = [(info.country, False), (info.region, False)]
    names += [(acronym, True) for acronym in ACRONYM.findall(info.publisher or "")]
    return [(name, exact) for name, exact in names if name]


def named_documents(request: str, documents: Iterable[DocumentInfo]) -> set[str]:
    """Ids of the documents whose country, region or publisher the request names."""
    words = re.findall(r"\w+", fold(request))
    return {
        doc.doc_id for doc in documents
        if any(_named(name, words, exact) for name, exact in counterpart_names(doc))
    }
