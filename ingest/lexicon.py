"""The library's vocabulary with one vector per word: carries a request's words into the library's language.

BM25 matches words, so a French or German request ("protéger", "Konflikten") shares almost none with
an English library, and the lexical half of hybrid search sits idle for it. Each word that recurs in the library
is embedded once, as a query, by the same multilingual model as the passages; a request word in another
language is replaced by the library word nearest to it when their cosine reaches ``TRANSLATION_THRESHOLD``
("protéger" → "protection", "mesures" → "measure"), and those words are searched with BM25.
Languages without a stopword list here (Vietnamese writes words as separate syllables) are left as they are.
Measured in docs/evaluation.md ("Request words carried into the library's language").
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import bm25s.stopwords as stopwords
import numpy as np

from assistant.embeddings import unit_rows

log = logging.getLogger(__name__)

MAX_WORDS = 20_000  # the most widespread words kept (embedding one costs ~8 ms on 2 cores)
MIN_CHUNKS = 2  # a word must occur in at least this many chunks (drops typos and one-off names)
TRANSLATION_THRESHOLD = 0.93  # cosine between a request word and a library word (single words score 0.85-1.0)
EMBED_BATCH = 256
CACHED_WORDS = 20_000  # request words whose library word is remembered (a word recurs across a request's facets and requests)
WORD = re.compile(r"[^\W\d_]{3,}")
ENGLISH_STOPWORDS = frozenset(stopwords.STOPWORDS_EN)
REQUEST_STOPWORDS = {
    "fr": stopwords.STOPWORDS_FRENCH, "de": stopwords.STOPWORDS_GERMAN, "es": stopwords.STOPWORDS_SPANISH,
    "it": stopwords.STOPWORDS_ITALIAN, "pt": stopwords.STOPWORDS_PORTUGUESE, "nl": stopwords.STOPWORDS_DUTCH,
}
REQUEST_STOPWORDS = {code: frozenset(words) | ENGLISH_STOPWORDS for code, words in REQUEST_STOPWORDS.items()}

Embed = Callable[[list[str]], list[list[float]]]


def library_words(texts: Iterable[str], limit: int = MAX_WORDS) -> list[str]:
    """Lower-cased words found in at least ``MIN_CHUNKS`` of ``texts``, most widespread first, without stopwords."""
    spread: Counter[str] = Counter()
    for text in texts:
        spread.update({word.lower() for word in WORD.findall(text)})
    return [w for w, n in spread.most_common() if n >= MIN_CHUNKS and w not in ENGLISH_STOPWORDS][:limit]


class Lexicon:
    """Library words and their unit query vectors, saved beside the BM25 index."""

    def __init__(self, words: list[str], vectors: np.ndarray, embedder: str, source: str = "") -> None:
        self.words = words
        self.source = source  # fingerprint of the chunks it was built from (the BM25 index's)
        self.matrix = unit_rows(vectors) if len(words) else np.zeros((0, 0), dtype=np.float32)
        self.embedder = embedder
        self._index = {word: i for i, word in enumerate(words)}

    @classmethod
    def empty(cls, embedder: str = "") -> "Lexicon":
        return cls([], np.zeros((0, 0), dtype=np.float32), embedder)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    @classmethod
    def build(
        cls, words: list[str], embed: Embed, embedder: str, previous: "Lexicon | None" = None, source: str = ""
    ) -> "Lexicon":
        """Vectors for ``words``, reusing those of ``previous`` (same embedder) so only new words are embedded."""
        reuse = previous if previous is not None and previous.embedder == embedder else None
        new = [w for w in words if reuse is None or w not in reuse]
        fresh = {}
        for start in range(0, len(new), EMBED_BATCH):
            part = new[start:start + EMBED_BATCH]
            fresh.update(zip(part, embed(part)))
        rows = [reuse.matrix[reuse._index[w]] if w not in fresh else np.asarray(fresh[w], dtype=np.float32)
                for w in words]
        return cls(words, np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32), embedder, source)

    @classmethod
    def load(cls, path: Path, embedder: str) -> "Lexicon":
        """The saved lexicon, or an empty one if there is none, it is unreadable or of another embedder."""
        if not path.is_file():
            return cls.empty(embedder)
        try:
            with np.load(path, allow_pickle=False) as saved:
                words, vectors = saved["words"].tolist(), saved["vectors"]
                saved_by, source = str(saved["embedder"]), str(saved["source"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("The word lexicon at %s is unreadable (%s); it will be rebuilt.", path, exc)
            return cls.empty(embedder)
        if saved_by != embedder:
            return cls.empty(embedder)
        return cls(words, vectors.astype(np.float32), embedder, source)

    def save(self, path: Path) -> None:
        """Write atomically (aside, then replace): readers in other processes may load it at any time."""
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".new.npz")
        np.savez(staging, words=np.array(self.words, dtype=str), vectors=self.matrix.astype(np.float16),
                 embedder=np.array(self.embedder), source=np.array(self.source))
        os.replace(staging, path)

    def nearest(self, vectors: np.ndarray, threshold: float = TRANSLATION_THRESHOLD) -> list[str | None]:
        """For each vector, the library word nearest to it if their cosine reaches ``threshold``."""
        if not self.words or not len(vectors):
            return [None] * len(vectors)
        similarities = unit_rows(vectors) @ self.matrix.T
        best = similarities.argmax(axis=1)
        return [self.words[j] if similarities[i, j] >= threshold else None for i, j in enumerate(best)]


class WordTranslator:
    """A request's content words in the library's words, for BM25 (see the module docstring).

    Remembers the library word each request word carries to (or that it carries to none) for the current
    lexicon: a word recurs across a request's facets and across requests, and embedding it and comparing it
    with every library word is what costs.
    """

    def __init__(self, embed: Embed) -> None:
        self._embed = embed
        self._carried: dict[str, str | None] = {}
        self._lexicon: Lexicon | None = None  # the lexicon ``_carried`` holds words of
        self._lock = threading.Lock()

    def library_query(self, text: str, language: str, lexicon: Lexicon) -> str | None:
        """``text``'s words carried into the library's words, or None when its language is not handled here
        (English, or no stopword list) or no word found a counterpart."""
        stop = REQUEST_STOPWORDS.get(language)
        if stop is None or not len(lexicon):
            return None
        words = [w for w in dict.fromkeys(w.lower() for w in WORD.findall(text)) if w not in stop]
        with self._lock:
            if self._lexicon is not lexicon:
                self._carried, self._lexicon = {}, lexicon
            carried = {w: w if w in lexicon else self._carried[w] for w in words if w in lexicon or w in self._carried}
        unseen = [w for w in words if w not in carried]
        if unseen:
            vectors = np.asarray(self._embed(unseen), dtype=np.float32)
            carried.update(zip(unseen, lexicon.nearest(vectors)))
            with self._lock:
                if self._lexicon is lexicon:
                    if len(self._carried) + len(unseen) > CACHED_WORDS:
                        self._carried.clear()
                    self._carried.update((w, carried[w]) for w in unseen)
        return " ".join(dict.fromkeys(carried[w] for w in words if carried[w])) or None
