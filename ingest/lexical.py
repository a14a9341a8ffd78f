"""The lexical half of hybrid search: a bm25s index persisted beside the vectors."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG: "Building index…" on every call

IDS_FILE = "chunk_ids.json"
CACHED_MASKS = 16


def fingerprint(chunk_ids: list[str]) -> str:
    return hashlib.sha1("\n".join(chunk_ids).encode()).hexdigest()


_local = threading.local()  # PyStemmer's stemmers are not thread-safe: one per thread


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lexical tokens: lower-cased words without English stopwords, stemmed."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over chunk texts (heading path included), with English stemming and stopwords."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._retriever: bm25s.BM25 | None = None
        self.chunk_ids: list[str] = []
        self._position: dict[str, int] = {}
        self._masks: dict[frozenset[str], np.ndarray] = {}
        self.fingerprint = ""
        self._load()

    def _load(self) -> None:
        ids_path = self.folder / IDS_FILE
        if not ids_path.is_file():
            return
        try:
            saved = json.loads(ids_path.read_text())
            retriever = bm25s.BM25.load(str(self.folder), show_progress=False) if saved["chunk_ids"] else None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("Lexical index at %s is unreadable (%s); it will be rebuilt.", self.folder, exc)
            return
        self._retriever = retriever
        self._set_ids(saved["chunk_ids"])

    def _set_ids(self, chunk_ids: list[str]) -> None:
        self.chunk_ids = chunk_ids
        self._position = {cid: i for i, cid in enumerate(chunk_ids)}
        self._masks = {}
        self.fingerprint = fingerprint(chunk_ids)

    def rebuild(self, chunk_ids: list[str], texts: list[str], persist: bool = True) -> None:
        """Index ``texts`` (one per chunk id); with ``persist``, save atomically (write aside, then swap)."""
        if not persist:
            retriever = None
            if chunk_ids:
                retriever = bm25s.BM25()
                retriever.index(tokenize(texts), show_progress=False)
            self._retriever = retriever
            self._set_ids(chunk_ids)
            return
        retriever = None
        staging = self.folder.with_name(self.folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if chunk_ids:
            retriever = bm25s.BM25()
            retriever.index(tokenize(texts), show_progress=False)
            retriever.save(str(staging), show_progress=False)
        (staging / IDS_FILE).write_text(json.dumps({"chunk_ids": chunk_ids}))
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self._retriever = retriever
        self._set_ids(chunk_ids)

    def _mask(self, allowed: set[str] | frozenset[str]) -> np.ndarray:
        """1.0 at the positions of ``allowed`` chunks; cached for a frozenset (the retriever reuses its sets)."""
        mask = self._masks.get(allowed) if isinstance(allowed, frozenset) else None
        if mask is None:
            mask = np.zeros(len(self.chunk_ids), dtype=np.float32)
            positions = [pos for pos in map(self._position.get, allowed) if pos is not None]
            mask[positions] = 1.0
            mask.flags.writeable = False  # shared between searches
            if isinstance(allowed, frozenset):
                if len(self._masks) >= CACHED_MASKS:
                    self._masks.clear()
                self._masks[allowed] = mask
        return mask

    def search(self, query: str, n: int, allowed: set[str] | frozenset[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``n`` (chunk id, BM25 score) pairs with a positive score, best first."""
        if self._retriever is None or not self.chunk_ids:
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        mask = None if allowed is None else self._mask(allowed)
        if mask is not None and not mask.any():
            return []
        k = min(n, len(self.chunk_ids))
        docs, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(self.chunk_ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def bm25_scores(query: str, texts: list[str]) -> list[float]:
    """BM25 score of each of ``texts`` for ``query``, the texts taken as a corpus of their own.

    Zero for every text when nothing matches.
    """
    if not texts:
        return []
    query_tokens = tokenize([query])[0]
    corpus = tokenize(texts)
    if not query_tokens or not any(corpus):
        return [0.0] * len(texts)
    retriever = bm25s.BM25()
    retriever.index([tokens or [""] for tokens in corpus], show_progress=False)
    return [float(s) for s in retriever.get_scores(query_tokens)]
