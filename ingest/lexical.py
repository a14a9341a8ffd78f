"""The lexical half of hybrid search: bm25s indexes persisted beside the vectors.

Two indexes: one over whole chunks, one over their sentences (``ingest.chunk.sentence_units``).
A chunk's BM25 score is diluted by its length, so a long passage that answers in one sentence
(a preamble clause, one recommendation among a list) ranks below short passages that merely share
a word or two with the request; its best sentence does not. A search fuses the chunk ranking with
the chunk ranking by best sentence, by reciprocal rank (measured in docs/evaluation.md).
"""

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

from ingest.chunk import sentence_units

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG: "Building index…" on every call

IDS_FILE = "chunk_ids.json"
SENTENCES_DIR = "sentences"
LEXICAL_VERSION = 2  # bump when the saved indexes change form, so they are rebuilt (2: the sentence index)
CACHED_MASKS = 16
FUSION_K = 10  # reciprocal-rank constant fusing the chunk and sentence rankings (the retriever's rrf_k)
SENTENCE_DEPTH = 5  # sentences read per wanted chunk (a chunk's sentences may fill several of the best places)


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
    """BM25 over chunk texts (heading path included) and over their sentences, with English stemming and stopwords."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._retriever: bm25s.BM25 | None = None
        self._sentences: bm25s.BM25 | None = None
        self._sentence_owner = np.zeros(0, dtype=np.int64)  # position of each sentence's chunk
        self.chunk_ids: list[str] = []
        self._position: dict[str, int] = {}
        self._masks: dict[frozenset[str], tuple[np.ndarray, np.ndarray]] = {}  # allowed → chunk and sentence masks
        self.fingerprint = ""
        self._load()

    def _load(self) -> None:
        ids_path = self.folder / IDS_FILE
        if not ids_path.is_file():
            return
        try:
            saved = json.loads(ids_path.read_text())
            if saved.get("version") != LEXICAL_VERSION:
                log.info("Lexical index at %s is of an older form; it will be rebuilt.", self.folder)
                return
            retriever = sentences = None
            if saved["chunk_ids"]:
                retriever = bm25s.BM25.load(str(self.folder), show_progress=False)
                sentences = bm25s.BM25.load(str(self.folder / SENTENCES_DIR), show_progress=False)
            owner = np.asarray(saved["sentence_owner"], dtype=np.int64)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("Lexical index at %s is unreadable (%s); it will be rebuilt.", self.folder, exc)
            return
        self._retriever, self._sentences, self._sentence_owner = retriever, sentences, owner
        self._set_ids(saved["chunk_ids"])

    def _set_ids(self, chunk_ids: list[str]) -> None:
        self.chunk_ids = chunk_ids
        self._position = {cid: i for i, cid in enumerate(chunk_ids)}
        self._masks = {}
        self.fingerprint = fingerprint(chunk_ids)

    @staticmethod
    def _build(texts: list[str], bodies: list[str]) -> tuple[bm25s.BM25, bm25s.BM25, np.ndarray]:
        """The chunk index, the sentence index and each sentence's chunk position."""
        chunks = bm25s.BM25()
        chunks.index(tokenize(texts), show_progress=False)
        owner, sentence_texts = [], []
        for position, text in enumerate(bodies):
            for sentence in sentence_units(text) or [text]:
                owner.append(position)
                sentence_texts.append(sentence)
        sentences = bm25s.BM25()
        sentences.index(tokenize(sentence_texts), show_progress=False)
        return chunks, sentences, np.asarray(owner, dtype=np.int64)

    def rebuild(
        self, chunk_ids: list[str], texts: list[str], persist: bool = True, bodies: list[str] | None = None
    ) -> None:
        """Index ``texts`` (one per chunk id), and the sentences of ``bodies`` (the chunks' own texts, without
        the heading path that leads ``texts``; default ``texts``); with ``persist``, save atomically (write
        aside, then swap)."""
        empty = (None, None, np.zeros(0, dtype=np.int64))
        retriever, sentences, owner = self._build(texts, bodies or texts) if chunk_ids else empty
        if persist:
            staging = self.folder.with_name(self.folder.name + ".new")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            if retriever is not None and sentences is not None:
                retriever.save(str(staging), show_progress=False)
                sentences.save(str(staging / SENTENCES_DIR), show_progress=False)
            saved = {"version": LEXICAL_VERSION, "chunk_ids": chunk_ids, "sentence_owner": owner.tolist()}
            (staging / IDS_FILE).write_text(json.dumps(saved))
            old = self.folder.with_name(self.folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if self.folder.exists():
                self.folder.rename(old)
            staging.rename(self.folder)
            shutil.rmtree(old, ignore_errors=True)
        self._retriever, self._sentences, self._sentence_owner = retriever, sentences, owner
        self._set_ids(chunk_ids)

    def _masks_for(self, allowed: set[str] | frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
        """1.0 at the positions of ``allowed`` chunks, and the same over their sentences; cached for a frozenset
        (the retriever reuses its sets)."""
        masks = self._masks.get(allowed) if isinstance(allowed, frozenset) else None
        if masks is None:
            chunks = np.zeros(len(self.chunk_ids), dtype=np.float32)
            positions = [pos for pos in map(self._position.get, allowed) if pos is not None]
            chunks[positions] = 1.0
            masks = (chunks, chunks[self._sentence_owner])
            for mask in masks:
                mask.flags.writeable = False  # shared between searches
            if isinstance(allowed, frozenset):
                if len(self._masks) >= CACHED_MASKS:
                    self._masks.clear()
                self._masks[allowed] = masks
        return masks

    def search(self, query: str, n: int, allowed: set[str] | frozenset[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``n`` (chunk id, fused score) pairs, best first: the chunks ranked by their own BM25 score and
        by their best sentence's, fused by reciprocal rank (a chunk matching neither is left out)."""
        if self._retriever is None or self._sentences is None or not self.chunk_ids:
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        mask, sentence_mask = (None, None) if allowed is None else self._masks_for(allowed)
        if mask is not None and not mask.any():
            return []
        k = min(n, len(self.chunk_ids))
        by_chunk = _best(self._retriever, tokens[0], k, mask).tolist()
        best_sentences = _best(self._sentences, tokens[0], SENTENCE_DEPTH * k, sentence_mask)
        by_sentence = list(dict.fromkeys(self._sentence_owner[best_sentences].tolist()))
        fused: dict[int, float] = {}
        for ranking in (by_chunk, by_sentence[:k]):
            for rank, position in enumerate(ranking, start=1):
                fused[position] = fused.get(position, 0.0) + 1.0 / (FUSION_K + rank)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        return [(self.chunk_ids[position], fused[position]) for position in best]


def _best(retriever: bm25s.BM25, tokens: list[str], k: int, mask: np.ndarray | None) -> np.ndarray:
    """Positions of the ``k`` best-scoring documents with a positive score (within ``mask``), best first.

    Selecting among the positive scores only: bm25s's own top k partitions all documents, which costs
    ~20 ms over 600k sentences once a mask has zeroed most of them.
    """
    if not any(token in retriever.vocab_dict for token in tokens):
        return np.zeros(0, dtype=np.int64)
    scores = retriever.get_scores(tokens, weight_mask=mask)
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
    return positive[np.argsort(-scores[positive], kind="stable")]


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
