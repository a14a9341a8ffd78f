"""The dense half of hybrid search: a Chroma collection, embedded or on a `chroma run` server."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from collections.abc import Sequence

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings
from ingest.types import Chunk

log = logging.getLogger(__name__)


class VectorStoreUnavailable(RuntimeError):
    """Chroma cannot be reached; the message says where and what to do."""


class _ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Hands Chroma our embedder so it never falls back to its downloading default."""

    def __init__(self, embeddings: Embeddings) -> None:
        self._embeddings = embeddings

    def __call__(self, input: Documents) -> list[list[float]]:  # noqa: A002 (Chroma's signature)
        return self._embeddings.embed_documents(list(input))

    @staticmethod
    def name() -> str:
        return "policylab"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "_ChromaEmbeddingFunction":
        raise NotImplementedError("The policylab embedding function is provided by the application.")


# Embedded Chroma caches one system per path and process; creating it from one thread while another drops
# or creates it (an upload opening the library while a search reopens its view) fails with KeyError or
# "'RustBindingsAPI' object has no attribute 'bindings'". One lock serialises opening and reopening.
EMBEDDED_LOCK = threading.RLock()
# Embedded Chroma holds its vector index in memory, once per process and path, and does not notice another
# process's writes. Each write is stamped "<process token>:<n>" in the library database (see Library);
# a stamp from another process that this process has not seen yet opens a new generation: a fresh
# instance that every VectorIndex of this process then joins before its next operation.
PROCESS_TOKEN = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_write_numbers = itertools.count(1)
_generations: dict[str, int] = {}
_seen_stamps: dict[str, str] = {}


def make_client(settings: Settings) -> chromadb.ClientAPI:
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_mode == "server":
        try:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
            client.heartbeat()
        except Exception as exc:  # chromadb raises several types for a refused connection
            raise VectorStoreUnavailable(
                f"Cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} ({exc.__class__.__name__}). "
                "Start it with `chroma run --path DIR --port PORT`, or set POLICYLAB_CHROMA_MODE=embedded."
            ) from exc
        return client
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    with EMBEDDED_LOCK:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


class VectorIndex:
    """Chunk vectors in one Chroma collection, keyed by chunk id, with doc_id metadata."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self._open()

    @property
    def _key(self) -> str:
        return str(self.settings.chroma_dir)

    def _open(self) -> None:
        with EMBEDDED_LOCK:
            self._generation = _generations.get(self._key, 0)
            self._client = make_client(self.settings)
            self._collection = self._client.get_or_create_collection(
                name=self.settings.collection,
                embedding_function=_ChromaEmbeddingFunction(self.embeddings),
                metadata={"hnsw:space": "cosine"},
            )

    @staticmethod
    def new_stamp() -> str:
        """A stamp for one write of this process (stored by the library after the write)."""
        return f"{PROCESS_TOKEN}:{next(_write_numbers)}"

    def follow(self, stamp: str | None) -> None:
        """Catch up with the last write, given its stamp: reopen if another process made it.

        A server is always current; in-process writers share one instance, so only another
        process's stamp, not seen before, opens a new generation.
        """
        if self.settings.chroma_mode == "server" or not stamp or stamp.startswith(PROCESS_TOKEN + ":"):
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        with EMBEDDED_LOCK:
            if _seen_stamps.get(self._key) != stamp:
                SharedSystemClient._identifier_to_system.pop(self._key, None)
                _generations[self._key] = _generations.get(self._key, 0) + 1
                _seen_stamps[self._key] = stamp
            if self._generation != _generations.get(self._key, 0):
                self._open()

    @property
    def _current(self):
        """This process's current collection handle (after another VectorIndex opened a new generation)."""
        if self.settings.chroma_mode != "server" and self._generation != _generations.get(self._key, 0):
            self._open()
        return self._collection

    def _guard(self, action: str, call):
        try:
            return call()
        except VectorStoreUnavailable:
            raise
        except Exception as exc:
            if self.settings.chroma_mode == "server" and _is_connection_error(exc):
                raise VectorStoreUnavailable(
                    f"Chroma server at {self.settings.chroma_host}:{self.settings.chroma_port} did not answer while "
                    f"trying to {action}. Check that `chroma run` is up; the request can be retried."
                ) from exc
            raise

    def count(self) -> int:
        return self._guard("count vectors", lambda: self._current.count())

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        if not chunks:
            return
        self._guard(
            "store vectors",
            lambda: self._current.upsert(
                ids=[c.chunk_id for c in chunks],
                embeddings=[list(v) for v in vectors],
                metadatas=[{"doc_id": c.doc_id, "page_index": c.page_index} for c in chunks],
            ),
        )

    def delete_doc(self, doc_id: str) -> None:
        self._guard("delete vectors", lambda: self._current.delete(where={"doc_id": doc_id}))

    def ids_for_doc(self, doc_id: str) -> list[str]:
        return self._guard("list vectors", lambda: self._current.get(where={"doc_id": doc_id}, include=[])["ids"])

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of ``chunk_ids`` (ids not in the collection are absent)."""
        if not chunk_ids:
            return {}
        result = self._guard("read vectors", lambda: self._current.get(ids=list(chunk_ids), include=["embeddings"]))
        return dict(zip(result["ids"], result["embeddings"]))

    def query(self, vector: Sequence[float], n: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``n`` nearest chunks, limited to ``doc_ids`` if given."""
        where = None
        if doc_ids is not None:
            if not doc_ids:
                return []
            where = {"doc_id": {"$in": list(doc_ids)}}
        result = self._guard(
            "search",
            lambda: self._current.query(query_embeddings=[list(vector)], n_results=n, where=where, include=["distances"]),
        )
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(result["ids"][0], result["distances"][0])]


def _is_connection_error(exc: Exception) -> bool:
    text = f"{exc.__class__.__name__} {exc}".lower()
    return any(word in text for word in ("connect", "refused", "timeout", "unreachable", "could not connect"))
