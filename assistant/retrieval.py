"""Hybrid retrieval: dense (Chroma + e5) and lexical (BM25) fused by reciprocal rank.

Metadata filters and visibility (shared library + the viewer's own uploads) are
resolved once into a set of allowed documents and applied to both retrievers, so a
private document can never surface for another user. Near-duplicate passages are
collapsed so the top k is diverse.

A request that names documents (a counterpart in a brief, an instrument cited by year in any
mode: see :mod:`assistant.counterparts`) is also searched within them; a request that asks
several things at once is also searched facet by facet (:func:`assistant.query_plan.request_facets`),
and the rankings are interleaved, so that every facet gets a place in the top k instead of the
most generic facet taking them all. Measured in docs/evaluation.md.

Per-query work must not grow with the library: the document list and the chunk ids of an
allowed set are cached until the library database changes (see ``Retriever._library_version``);
a restriction that keeps most of the library is applied to the dense results after the search,
and one to a few documents is searched exactly over their cached vectors, rather than either
going through a Chroma ``$in`` filter.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from assistant.counterparts import cited_documents, named_documents, titled_documents, without_citations
from assistant.embeddings import embed_queries, unit_rows
from assistant.language import detect_language
from assistant.query_plan import request_facets
from assistant.settings import Settings
from assistant.types import DocumentInfo, Passage
from ingest.library import Library
from ingest.lexicon import WordTranslator

log = logging.getLogger(__name__)

FILTER_FIELDS = ("doc_type", "country", "region", "language", "publisher", "title", "source_file")
DUPLICATE_JACCARD = 0.8
LEXICAL_WEIGHT = 1.0
CROSS_LINGUAL_LEXICAL_WEIGHT = 0.1
CARRIED_LEXICAL_WEIGHT = 0.5  # a request in another language, searched with the library words nearest to its own
DENSE_POSTFILTER_SHARE = 0.25  # allowed chunks / all chunks at or above which dense results are filtered after search
COUNTERPART_MODES = ("brief",)  # modes whose request names a counterpart whose own documents should lead
CACHED_ENTRIES = 64  # viewers and allowed sets remembered per library version
EXACT_SEARCH_MAX_CHUNKS = 2000  # allowed sets up to this size are searched exactly in memory, not through Chroma
CACHED_MATRICES = 16  # their vectors kept per library version (at most 16 x 2000 x 384 floats, ~50 MB)
ROWS_PER_FETCH = 20  # candidate passages read from the library at a time (a request's rankings hold hundreds)


@dataclass
class SearchFilters:
    """Metadata filters. Text fields match case-insensitively as substrings ("article" matches
    "article on national diplomacy strategy"); ``country`` also matches the region field."""

    fields: dict[str, str] = field(default_factory=dict)
    year_from: int | None = None
    year_to: int | None = None
    doc_ids: set[str] | None = None

    @classmethod
    def parse(cls, pairs: list[str] | None = None, year: str | None = None) -> "SearchFilters":
        """From CLI-style ``key=value`` pairs and a ``FROM:TO`` year range (either end optional)."""
        fields: dict[str, str] = {}
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not sep or not value.strip():
                raise ValueError(f"Filter {pair!r} must look like key=value, e.g. country=Vietnam.")
            if key not in FILTER_FIELDS:
                raise ValueError(f"Unknown filter {key!r}; use one of: {', '.join(FILTER_FIELDS)}.")
            fields[key] = value.strip()
        year_from = year_to = None
        if year:
            start, sep, end = year.partition(":")
            try:
                year_from = int(start) if start.strip() else None
                year_to = int(end) if sep and end.strip() else (year_from if not sep else None)
            except ValueError as exc:
                raise ValueError(f"Year range {year!r} must look like 2020:2026, 2020: or :2005.") from exc
        return cls(fields, year_from, year_to)

    def is_empty(self) -> bool:
        return not self.fields and self.year_from is None and self.year_to is None and self.doc_ids is None

    def matches(self, info: DocumentInfo) -> bool:
        if self.doc_ids is not None and info.doc_id not in self.doc_ids:
            return False
        for key, wanted in self.fields.items():
            wanted_l = wanted.lower()
            values = [getattr(info, key, "")]
            if key == "country":
                values.append(info.region)
            if not any(wanted_l in str(v or "").lower() for v in values):
                return False
        if self.year_from is not None and (info.year is None or info.year < self.year_from):
            return False
        if self.year_to is not None and (info.year is None or info.year > self.year_to):
            return False
        return True


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class Retriever:
    """Search the library; thread-safe for concurrent readers."""

    def __init__(self, settings: Settings, library: Library | None = None) -> None:
        self.settings = settings
        self.library = library or Library.open(settings)
        self._cache_lock = threading.Lock()
        self._cache_version: object = None
        self._documents: dict[str | None, list[DocumentInfo]] = {}
        self._doc_chunks: dict[str, tuple[str, ...]] = {}
        self._chunk_sets: dict[frozenset[str], frozenset[str]] = {}
        self._matrices: dict[frozenset[str], tuple[list[str], np.ndarray]] = {}  # allowed chunks → their vectors
        self._translator = WordTranslator(lambda words: embed_queries(self.library.vectors.embeddings, words))

    # --- per-version cache of the library database -------------------------
    def _library_version(self) -> object:
        """A value that changes whenever the library database does.

        ``PRAGMA data_version`` changes when another connection (another process, or another
        ``Library``) commits; ``total_changes`` counts the rows changed through our own
        connection. Without access to the connection nothing is cached.
        """
        conn = getattr(self.library.store, "_conn", None)
        if conn is None:
            return object()
        return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes

    def _check_cache(self) -> None:
        """Drop cached documents and chunk sets, and follow the vector and BM25 indexes, if the database changed.

        Call with ``_cache_lock`` held.
        """
        version = self._library_version()
        if version != self._cache_version:
            self._documents, self._doc_chunks, self._chunk_sets, self._matrices = {}, {}, {}, {}
            self.library.follow_writers()
            self._cache_version = version

    def _visible_documents(self, viewer: str | None) -> list[DocumentInfo]:
        """``Library.documents(viewer)``, read from the database once per library version."""
        with self._cache_lock:
            self._check_cache()
            docs = self._documents.get(viewer)
            if docs is None:
                if len(self._documents) >= CACHED_ENTRIES:
                    self._documents.clear()
                docs = self._documents[viewer] = self.library.documents(viewer=viewer)
            return docs

    def _allowed_chunks(self, doc_ids: frozenset[str]) -> frozenset[str]:
        """Chunk ids of ``doc_ids``; the same object is returned while the library is unchanged."""
        with self._cache_lock:
            self._check_cache()
            chunks = self._chunk_sets.get(doc_ids)
            if chunks is None:
                store = self.library.store
                for doc_id in doc_ids - self._doc_chunks.keys():
                    self._doc_chunks[doc_id] = tuple(store.chunk_ids(doc_id))
                if len(self._chunk_sets) >= CACHED_ENTRIES:
                    self._chunk_sets.clear()
                chunks = self._chunk_sets[doc_ids] = frozenset(
                    cid for doc_id in doc_ids for cid in self._doc_chunks[doc_id]
                )
            return chunks

    def library_language(self, viewer: str | None = None) -> str:
        """The language most of the viewer's visible passages are written in ("" for an empty library)."""
        chunks: dict[str, int] = {}
        for doc in self._visible_documents("" if viewer is None else viewer):
            if doc.language:
                chunks[doc.language] = chunks.get(doc.language, 0) + doc.chunks
        return max(chunks, key=chunks.__getitem__, default="")

    def allowed_documents(self, filters: SearchFilters | None, viewer: str | None) -> dict[str, DocumentInfo]:
        docs = self._visible_documents("" if viewer is None else viewer)
        return {d.doc_id: d for d in docs if filters is None or filters.matches(d)}

    def _dense(
        self, vector: list[float], n: int, doc_ids: list[str] | None, allowed_chunks: frozenset[str] | None,
        total_chunks: int,
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunks among the allowed ones, re-ranked by their best sentence."""
        return self._with_best_sentences(vector, self._nearest(vector, n, doc_ids, allowed_chunks, total_chunks))

    def _nearest(
        self, vector: list[float], n: int, doc_ids: list[str] | None, allowed_chunks: frozenset[str] | None,
        total_chunks: int,
    ) -> list[tuple[str, float]]:
        """The ``n`` allowed chunks whose own vectors are nearest.

        A Chroma ``$in`` filter over many documents costs far more than the search itself, so a few
        allowed documents are searched exactly in memory, and when the allowed chunks are a large
        share of the library the search is widened and the hits outside it dropped; the filter is
        used only in between, or if too few allowed hits remain.
        """
        vectors = self.library.vectors
        if doc_ids is None or allowed_chunks is None:
            return vectors.query(vector, n, doc_ids)
        if len(allowed_chunks) <= EXACT_SEARCH_MAX_CHUNKS:
            return self._exact(vector, n, allowed_chunks)
        if total_chunks and len(allowed_chunks) >= DENSE_POSTFILTER_SHARE * total_chunks:
            wide = min(total_chunks, math.ceil(2 * n * total_chunks / len(allowed_chunks)))
            hits = [hit for hit in vectors.query(vector, wide) if hit[0] in allowed_chunks]
            if len(hits) >= n:
                return hits[:n]
        return vectors.query(vector, n, doc_ids)

    def _exact(self, vector: list[float], n: int, allowed_chunks: frozenset[str]) -> list[tuple[str, float]]:
        """The ``n`` nearest of a few allowed chunks (a cited instrument, a counterpart's documents, a private
        upload), by exact cosine over their vectors, read once per library version: a Chroma ``$in`` filter costs
        ~60 ms a search at 100k chunks, and a request searches its named documents once per facet."""
        with self._cache_lock:
            self._check_cache()
            cached = self._matrices.get(allowed_chunks)
        if cached is None:
            stored = self.library.vectors.vectors(sorted(allowed_chunks))
            ids = list(stored)
            cached = (ids, unit_rows([stored[cid] for cid in ids]) if ids else np.empty((0, 0), dtype=np.float32))
            with self._cache_lock:
                if len(self._matrices) >= CACHED_MATRICES:
                    self._matrices.clear()
                self._matrices[allowed_chunks] = cached
        ids, matrix = cached
        if not ids:
            return []
        similarities = matrix @ unit_rows(vector)[0]
        best = np.argsort(-similarities)[:n]
        return [(ids[i], float(similarities[i])) for i in best]

    def _with_best_sentences(self, vector: list[float], hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``hits`` re-ranked by ``(1 - w) * passage similarity + w * its best sentence's`` (``w``: the
        ``sentence_weight`` setting); each keeps its passage similarity as score, on which abstention is calibrated.

        A passage's vector averages all it says, so one that answers in a single sentence among many
        others (a preamble's twenty "Recognizing…" clauses) ranks low; its best sentence does not.
        Passages stored without sentence vectors (a single sentence) count their own similarity twice.
        """
        weight = self.settings.sentence_weight
        if not hits or weight <= 0:
            return hits
        query = unit_rows(vector)[0]
        sentences = self.library.store.sentence_vectors([cid for cid, _ in hits], len(query))
        combined = {}
        for cid, similarity in hits:
            matrix = sentences.get(cid)
            best = float((matrix.astype(np.float32) @ query).max()) if matrix is not None and len(matrix) else similarity
            combined[cid] = (1 - weight) * similarity + weight * best
        return sorted(hits, key=lambda hit: combined[hit[0]], reverse=True)

    def _fused_ranking(
        self, lexical_query: str, vector: list[float], n: int, doc_ids: list[str] | None,
        allowed_chunks: frozenset[str] | None, total_chunks: int, lexical_weight: float,
    ) -> tuple[list[str], dict[str, dict]]:
        """Chunk ids for one query (its embedding, and its words for BM25), best first, and per-chunk ranking
        evidence."""
        dense = self._dense(vector, n, doc_ids, allowed_chunks, total_chunks)
        lexical = self.library.lexical.search(lexical_query, n, allowed_chunks)
        fused: dict[str, float] = {}
        evidence: dict[str, dict] = {}
        for rank, (cid, score) in enumerate(dense, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.settings.rrf_k + rank)
            evidence.setdefault(cid, {}).update(dense_rank=rank, dense_score=score)
        for rank, (cid, _score) in enumerate(lexical, start=1):
            fused[cid] = fused.get(cid, 0.0) + lexical_weight / (self.settings.rrf_k + rank)
            evidence.setdefault(cid, {})["lexical_rank"] = rank
        return sorted(fused, key=fused.__getitem__, reverse=True), evidence

    def search(
        self, query: str, k: int | None = None, filters: SearchFilters | None = None, viewer: str | None = None,
        candidates: int | None = None, mode: str = "ask",
    ) -> list[Passage]:
        """The ``k`` best passages for ``query`` among documents visible to ``viewer`` ("" or None: shared only).

        The request is also searched within the documents it cites by year (any ``mode``) or whose
        counterpart it names (a country, region or organisation of the metadata; ``mode`` "brief"),
        and facet by facet when it asks several things at once (see the module docstring).
        """
        k = k or self.settings.top_k
        n = max(candidates or self.settings.candidates, k)
        allowed = self.allowed_documents(filters, viewer)
        if not allowed or not query.strip():
            return []
        complete = self._visible_documents(None)
        all_visible = len(allowed) == len(complete)
        doc_ids = None if all_visible else list(allowed)
        allowed_chunks = None if all_visible else self._allowed_chunks(frozenset(allowed))
        total_chunks = sum(d.chunks for d in complete)

        named = cited_documents(query, allowed.values()) | titled_documents(query, allowed.values())
        if mode in COUNTERPART_MODES:
            named |= named_documents(query, allowed.values())
        named_ids = sorted(named) if len(named) < len(allowed) else []
        named_chunks = self._allowed_chunks(frozenset(named_ids)) if named_ids else None

        # The whole request, then each facet of a multi-facet request on its own, over every allowed
        # document and, fused with it, over the documents the request names: they lead without hiding
        # the rest of the library (a facet may ask for what only another document holds: "…the 2003
        # Convention and the Vietnamese experience"). Once the request names documents, it and its facets
        # are searched without the instruments they cite (see ``without_citations``).
        searched, facets = query, request_facets(query)
        if named_ids:
            searched, facets = without_citations(query), [without_citations(facet) for facet in facets]
        vectors = embed_queries(self.library.vectors.embeddings, [searched, *facets])
        searches = [(doc_ids, allowed_chunks)] + ([(named_ids, named_chunks)] if named_ids else [])
        evidence: dict[str, dict] = {}
        rankings = [
            self._ranking_over(text, text_vector, n, searches, total_chunks, evidence)
            for text, text_vector in zip([searched, *facets], vectors)
        ]
        scores = self._interleave(rankings)
        ranked = list(scores)

        passages: list[Passage] = []
        kept_shingles: list[set[str]] = []
        rows: dict = {}
        for position, cid in enumerate(ranked):
            if position % ROWS_PER_FETCH == 0:  # the next few candidates' rows: most searches stop within the first
                rows = self.library.store.chunks_by_id(ranked[position:position + ROWS_PER_FETCH])
            row = rows.get(cid)
            if row is None or row["status"] != "complete" or row["doc_id"] not in allowed:
                continue
            shingles = _shingles(row["text"])
            if any(_jaccard(shingles, seen) >= DUPLICATE_JACCARD for seen in kept_shingles):
                continue
            kept_shingles.append(shingles)
            ev = evidence.get(cid, {})
            passages.append(self._passage(row, allowed[row["doc_id"]], scores[cid], ev.get("dense_score"),
                                          ev.get("dense_rank"), ev.get("lexical_rank")))
            if len(passages) == k:
                break
        return passages

    def _ranking_over(
        self, query: str, vector: list[float], n: int, searches: list[tuple[list[str] | None, frozenset[str] | None]],
        total_chunks: int, evidence: dict[str, dict],
    ) -> list[str]:
        """Chunk ids for one query, best first: its fused rankings over each of ``searches`` (allowed documents
        and their chunks), fused again by reciprocal rank; each chunk's first ranking evidence goes into ``evidence``."""
        fused: dict[str, float] = {}
        lexical_query, lexical_weight = self._lexical_query(query)
        for restrict_docs, restrict_chunks in searches:
            ranking, found = self._fused_ranking(
                lexical_query, vector, n, restrict_docs, restrict_chunks, total_chunks, lexical_weight
            )
            for rank, cid in enumerate(ranking, start=1):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.settings.rrf_k + rank)
                evidence.setdefault(cid, found[cid])
        return sorted(fused, key=fused.__getitem__, reverse=True)

    def _lexical_query(self, query: str) -> tuple[str, float]:
        """What BM25 searches for ``query``, and the weight of its ranking: an English request as it is; another
        language's carried into the library's words when it can be (``ingest.lexicon``), else as it is with a
        small weight (its words rarely match an English library)."""
        language = detect_language(query)
        if language == "en":
            return query, LEXICAL_WEIGHT
        carried = self._translator.library_query(query, language, self.library.lexicon)
        return (carried, CARRIED_LEXICAL_WEIGHT) if carried else (query, CROSS_LINGUAL_LEXICAL_WEIGHT)

    def _interleave(self, rankings: list[list[str]]) -> dict[str, float]:
        """Round robin over the rankings (the whole request's first), best first: a chunk's score is
        the reciprocal rank of its best place, ``1 / (rrf_k + rank)``."""
        scores: dict[str, float] = {}
        for depth in range(max(map(len, rankings), default=0)):
            for ranking in rankings:
                if depth < len(ranking) and ranking[depth] not in scores:
                    scores[ranking[depth]] = 1.0 / (self.settings.rrf_k + depth + 1)
        return scores

    @staticmethod
    def _passage(row, info: DocumentInfo, score: float, dense_score, dense_rank, lexical_rank) -> Passage:
        return Passage(
            chunk_id=row["chunk_id"], doc_id=row["doc_id"], text=row["text"], source_file=info.source_file,
            title=info.title, publisher=info.publisher, year=info.year, doc_type=info.doc_type,
            country=info.country, region=info.region, language=info.language, page=row["page_number"],
            page_index=row["page_index"], section=row["section"], char_start=row["char_start"],
            char_end=row["char_end"], score=score, dense_score=dense_score, dense_rank=dense_rank,
            lexical_rank=lexical_rank, extra={"owner": info.owner},
        )


def passages_to_json(passages: list[Passage]) -> str:
    return json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2)
