"""The library as one object: the SQLite store, the Chroma vectors and the BM25 index together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property, partial

import numpy as np

from assistant.embeddings import embed_queries, make_embeddings
from assistant.settings import Settings
from assistant.types import DocumentInfo
from ingest.chunk import sentence_units
from ingest.lexical import LexicalIndex, fingerprint
from ingest.lexicon import Lexicon, library_words
from ingest.store import LibraryStore
from ingest.types import Chunk, Page
from ingest.vectors import VectorIndex

log = logging.getLogger(__name__)


VECTOR_WRITE_KEY = "last_vector_write"  # meta key: stamp of the last vector write (see VectorIndex.follow)


def embed_text(section: str, text: str) -> str:
    return f"{section}\n{text}" if section else text


class Library:
    """Everything indexed under one data directory."""

    def __init__(self, settings: Settings, store: LibraryStore, vectors: VectorIndex, lexical: LexicalIndex) -> None:
        self.settings = settings
        self.store = store
        self.vectors = vectors
        self.lexical = lexical
        self.lexicon = Lexicon.load(settings.lexicon_path, self.embedder)

    @classmethod
    def open(cls, settings: Settings) -> "Library":
        embeddings = make_embeddings(settings)
        return cls(
            settings, LibraryStore(settings.library_db), VectorIndex(settings, embeddings), LexicalIndex(settings.bm25_dir)
        )

    # --- writing ---------------------------------------------------------
    def recover_interrupted(self) -> list[str]:
        """Drop documents left half-ingested by a crash; returns their file names."""
        dropped = []
        for info in self.store.documents(status="ingesting"):
            self.vectors.delete_doc(info.doc_id)
            self._stamp_vector_write()
            self.store.delete(info.doc_id)
            dropped.append(info.source_file)
            log.warning("Removed %s, left half-ingested by an interrupted run; it will be ingested again.", info.source_file)
        return dropped

    def add_document(
        self, info: DocumentInfo, pages: list[Page], chunks: list[Chunk],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Index one document all-or-nothing (it becomes searchable only when complete)."""
        self.store.begin_document(info, pages, chunks)
        try:
            self.vectors.delete_doc(info.doc_id)
            batch = max(1, self.settings.embedding_batch)
            for start in range(0, len(chunks), batch):
                part = chunks[start : start + batch]
                # a chunk of several sentences also gets one vector per sentence (see Retriever._dense)
                sentences = {c.chunk_id: units for c in part if len(units := sentence_units(c.text)) > 1}
                texts = [embed_text(c.section, c.text) for c in part] + [u for units in sentences.values() for u in units]
                vectors = self.vectors.embeddings.embed_documents(texts)
                self.vectors.upsert(part, vectors[: len(part)])
                offset = len(part)
                per_chunk = {}
                for chunk_id, units in sentences.items():
                    per_chunk[chunk_id] = np.array(vectors[offset : offset + len(units)], dtype=np.float32)
                    offset += len(units)
                self.store.save_sentence_vectors(per_chunk)
                if progress:
                    progress("chunks", start + len(part), len(chunks))
            self._stamp_vector_write()
            self.store.mark_complete(info.doc_id)
        except BaseException:
            self.vectors.delete_doc(info.doc_id)
            self._stamp_vector_write()
            self.store.delete(info.doc_id)
            raise

    def stored_sentence_vectors(self, chunks: dict[str, str]) -> dict[str, list[float]]:
        """The vectors stored at indexing for the sentences of ``chunks`` (chunk id → its text), by sentence text.

        The citation check and the extractive answer score single sentences against a request; the sentences
        that indexing embedded already (most of them) need not be embedded again.
        """
        units = {chunk_id: sentence_units(text) for chunk_id, text in chunks.items()}
        stored = self.store.sentence_vectors([cid for cid, u in units.items() if len(u) > 1], self.embedding_dimensions)
        return {unit: row.astype(np.float32).tolist()
                for chunk_id, matrix in stored.items() if len(matrix) == len(units[chunk_id])  # else cut otherwise since
                for unit, row in zip(units[chunk_id], matrix)}

    @cached_property
    def embedding_dimensions(self) -> int:
        """The length of the embedder's vectors (one embedding, on first use)."""
        return len(self.vectors.embeddings.embed_query("dimensions"))

    def remove(self, reference: str, owner: str | None = None) -> DocumentInfo | None:
        """Remove a document by id or file name (limited to ``owner``'s documents if given)."""
        target = self.resolve(reference, owner)
        if target is None:
            return None
        self.vectors.delete_doc(target.doc_id)
        self._stamp_vector_write()
        self.store.delete(target.doc_id)
        self.rebuild_lexical()
        return target

    def resolve(self, reference: str, owner: str | None = None) -> DocumentInfo | None:
        for info in self.store.documents(status=None):
            if owner is not None and info.owner != owner:
                continue
            if reference in (info.doc_id, info.source_file, info.path):
                return info
        return None

    # --- lexical index ---------------------------------------------------
    def lexical_in_sync(self) -> bool:
        """Whether the BM25 index and the word lexicon were both built from the complete chunks of the store."""
        current = fingerprint(self.store.complete_chunk_ids())
        return self.lexical.fingerprint == current and self.lexicon.source == current

    def rebuild_lexical(self, persist: bool = True) -> None:
        """Rebuild BM25 over the complete chunks; with ``persist``, save it and rebuild the word lexicon too (only
        new words are embedded). Readers (``persist=False``) build BM25 in memory and load the saved lexicon."""
        rows = self.store.chunk_rows()
        self.lexical.rebuild([r["chunk_id"] for r in rows], [embed_text(r["section"], r["text"]) for r in rows],
                             persist=persist, bodies=[r["text"] for r in rows])
        if persist:
            words = library_words(r["text"] for r in rows)
            embed = partial(embed_queries, self.vectors.embeddings)
            self.lexicon = Lexicon.build(words, embed, self.embedder, self.lexicon, self.lexical.fingerprint)
            self.lexicon.save(self.settings.lexicon_path)

    @property
    def embedder(self) -> str:
        """Which embedding model made the vectors (a lexicon of another is not reused)."""
        embeddings = self.vectors.embeddings
        return getattr(embeddings, "name", type(embeddings).__name__)

    def _stamp_vector_write(self) -> None:
        """Record that this process changed the vectors, so that other processes reopen theirs."""
        self.store.set_meta(VECTOR_WRITE_KEY, self.vectors.new_stamp())

    def follow_writers(self) -> None:
        """Catch up with writes made through other connections or processes (vectors and BM25)."""
        self.vectors.follow(self.store.get_meta(VECTOR_WRITE_KEY))
        self.follow_lexical()

    def follow_lexical(self) -> None:
        """Catch up with another process's writes: reload the saved BM25 index (or build one in memory) and
        the saved word lexicon.

        Readers never write the index files: the writer may still be saving them. A lexicon a little behind
        the chunks still carries request words well, so a reader only reloads it.
        """
        current = fingerprint(self.store.complete_chunk_ids())
        if self.lexical.fingerprint != current:
            self.lexical = LexicalIndex(self.lexical.folder)
            if self.lexical.fingerprint != current:
                self.rebuild_lexical(persist=False)
        if self.lexicon.source != current:
            self.lexicon = Lexicon.load(self.settings.lexicon_path, self.embedder)

    # --- reading -----------------------------------------------------------
    def documents(self, viewer: str | None = None) -> list[DocumentInfo]:
        """Complete documents visible to ``viewer`` (shared ones, plus the viewer's own; all if None)."""
        docs = self.store.documents()
        return docs if viewer is None else [d for d in docs if d.owner in ("", viewer)]
