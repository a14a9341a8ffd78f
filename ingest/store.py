"""The library database (SQLite): documents, their page texts and their chunks.

It is the source of truth for what is indexed. Chroma holds the vectors and the
BM25 index is rebuilt from the ``chunks`` table. A document is searchable only
while its status is ``complete``: an ingest that dies midway leaves ``ingesting``,
which searches ignore and the next ingest redoes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from assistant.embeddings import unit_rows
from assistant.types import DocumentInfo
from ingest.types import Chunk, Page

CHUNKING_KEY = "chunking:"  # meta key prefix: the chunking signature a document was indexed with

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source_file TEXT NOT NULL,
    path TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS pages (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    page_index INTEGER NOT NULL,
    page_number INTEGER,
    text TEXT NOT NULL,
    PRIMARY KEY (doc_id, page_index)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    page_index INTEGER NOT NULL,
    page_number INTEGER,
    section TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    chunk_id TEXT PRIMARY KEY REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    vectors BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _info(row: sqlite3.Row, chunks: int, pages: int) -> DocumentInfo:
    meta = json.loads(row["metadata"])
    known = {k: meta[k] for k in DocumentInfo.__dataclass_fields__ if k in meta}
    known.update(
        doc_id=row["doc_id"], source_file=row["source_file"], path=row["path"], owner=row["owner"],
        content_hash=row["content_hash"], status=row["status"], chunks=chunks, pages=pages,
    )
    return DocumentInfo(**known)


class LibraryStore:
    """Thin, typed access to the library database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._conn:
            yield self._conn

    # --- documents -------------------------------------------------------
    def find(self, source_file: str, owner: str = "") -> DocumentInfo | None:
        row = self._conn.execute(
            "SELECT * FROM documents WHERE source_file=? AND owner=?", (source_file, owner)
        ).fetchone()
        return self._with_counts(row) if row else None

    def get(self, doc_id: str) -> DocumentInfo | None:
        row = self._conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return self._with_counts(row) if row else None

    def _with_counts(self, row: sqlite3.Row) -> DocumentInfo:
        chunks = self._conn.execute("SELECT COUNT(*) FROM chunks WHERE doc_id=?", (row["doc_id"],)).fetchone()[0]
        pages = self._conn.execute("SELECT COUNT(*) FROM pages WHERE doc_id=?", (row["doc_id"],)).fetchone()[0]
        return _info(row, chunks, pages)

    def documents(self, status: str | None = "complete") -> list[DocumentInfo]:
        query = "SELECT * FROM documents" + (" WHERE status=?" if status else "") + " ORDER BY source_file"
        rows = self._conn.execute(query, (status,) if status else ()).fetchall()
        return [self._with_counts(r) for r in rows]

    def complete_doc_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT doc_id FROM documents WHERE status='complete'")}

    def begin_document(self, info: DocumentInfo, pages: list[Page], chunks: list[Chunk]) -> None:
        """Write a document as ``ingesting`` with its pages and chunks (replacing any old rows)."""
        meta = json.dumps(info.to_dict(), ensure_ascii=False)
        with self._conn:
            self._conn.execute("DELETE FROM documents WHERE doc_id=?", (info.doc_id,))
            self._conn.execute(
                "INSERT INTO documents(doc_id, source_file, path, owner, content_hash, status, metadata)"
                " VALUES (?,?,?,?,?,?,?)",
                (info.doc_id, info.source_file, info.path, info.owner, info.content_hash, "ingesting", meta),
            )
            self._conn.executemany(
                "INSERT INTO pages(doc_id, page_index, page_number, text) VALUES (?,?,?,?)",
                [(info.doc_id, i, p.number, p.text) for i, p in enumerate(pages)],
            )
            self._conn.executemany(
                "INSERT INTO chunks(chunk_id, doc_id, ordinal, page_index, page_number, section, char_start,"
                " char_end, tokens, text) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (c.chunk_id, c.doc_id, c.ordinal, c.page_index, c.page, c.section, c.char_start,
                     c.char_end, c.tokens, c.text)
                    for c in chunks
                ],
            )

    def mark_complete(self, doc_id: str) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE documents SET status='complete', updated_at=datetime('now') WHERE doc_id=?", (doc_id,)
            )

    def delete(self, doc_id: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._conn.execute("DELETE FROM meta WHERE key=?", (CHUNKING_KEY + doc_id,))

    def set_owner(self, doc_id: str, owner: str) -> None:
        row = self._conn.execute("SELECT metadata FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        meta = json.loads(row["metadata"])
        meta["owner"] = owner
        with self._conn:
            self._conn.execute(
                "UPDATE documents SET owner=?, metadata=? WHERE doc_id=?", (owner, json.dumps(meta), doc_id)
            )

    # --- pages and chunks -----------------------------------------------
    def page_texts(self, doc_id: str) -> list[tuple[int | None, str]]:
        rows = self._conn.execute(
            "SELECT page_number, text FROM pages WHERE doc_id=? ORDER BY page_index", (doc_id,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def page_text(self, doc_id: str, page_index: int) -> str:
        row = self._conn.execute(
            "SELECT text FROM pages WHERE doc_id=? AND page_index=?", (doc_id, page_index)
        ).fetchone()
        return row[0] if row else ""

    def chunk_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))]

    def chunk_rows(self, doc_ids: Iterable[str] | None = None) -> list[sqlite3.Row]:
        """Chunks of complete documents (all of them, or of ``doc_ids``), in a stable order."""
        query = (
            "SELECT c.*, d.metadata, d.owner, d.source_file FROM chunks c JOIN documents d USING(doc_id)"
            " WHERE d.status='complete'"
        )
        params: tuple = ()
        if doc_ids is not None:
            ids = list(doc_ids)
            query += f" AND c.doc_id IN ({','.join('?' * len(ids))})"
            params = tuple(ids)
        return self._conn.execute(query + " ORDER BY c.doc_id, c.ordinal", params).fetchall()

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                         (key, value))

    def complete_chunk_ids(self) -> list[str]:
        """Ids of all chunks of complete documents, in ``chunk_rows`` order."""
        rows = self._conn.execute("SELECT c.chunk_id FROM chunks c JOIN documents d USING(doc_id)"
                                  " WHERE d.status='complete' ORDER BY c.doc_id, c.ordinal")
        return [r[0] for r in rows]

    def chunks_by_id(self, chunk_ids: Iterable[str]) -> dict[str, sqlite3.Row]:
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self._conn.execute(
            "SELECT c.*, d.metadata, d.owner, d.source_file, d.status FROM chunks c JOIN documents d USING(doc_id)"
            f" WHERE c.chunk_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        return {r["chunk_id"]: r for r in rows}

    def save_sentence_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store each chunk's sentence vectors (a sentences × dimensions matrix, kept as unit-length float16)."""
        rows = [(chunk_id, unit_rows(matrix).astype(np.float16).tobytes()) for chunk_id, matrix in vectors.items()]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO sentence_vectors(chunk_id, vectors) VALUES (?,?)", rows)

    def sentence_vectors(self, chunk_ids: Iterable[str], dimensions: int) -> dict[str, np.ndarray]:
        """The stored sentence vectors of ``chunk_ids`` (chunks stored without any are absent)."""
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self._conn.execute(
            f"SELECT chunk_id, vectors FROM sentence_vectors WHERE chunk_id IN ({','.join('?' * len(ids))})", ids
        ).fetchall()
        return {r[0]: np.frombuffer(r[1], dtype=np.float16).reshape(-1, dimensions) for r in rows}

    def counts(self) -> tuple[int, int]:
        """(complete documents, their chunks)."""
        docs = self._conn.execute("SELECT COUNT(*) FROM documents WHERE status='complete'").fetchone()[0]
        chunks = self._conn.execute(
            "SELECT COUNT(*) FROM chunks JOIN documents USING(doc_id) WHERE status='complete'"
        ).fetchone()[0]
        return docs, chunks
