"""The real e5 embedder: queries one by one and in a batch give the same vectors."""

from __future__ import annotations

import numpy as np

from assistant.embeddings import E5Embeddings, embed_queries


def test_a_batch_of_queries_matches_queries_one_by_one():
    embeddings = E5Embeddings()
    texts = ["Brief me before a meeting with Vietnamese counterparts: their stated principles",
             "their stated principles", "what they want culture to achieve"]
    batch = np.array(embed_queries(embeddings, texts))
    single = np.array([embeddings.embed_query(text) for text in texts])
    assert batch.shape == (3, 384)
    assert np.allclose((batch * single).sum(axis=1), 1.0, atol=1e-3)  # unit vectors, same direction
    assert not np.allclose(batch[1], batch[2])


def test_an_embedder_without_a_batch_method_is_asked_one_by_one():
    class OneByOne:
        def embed_query(self, text: str) -> list[float]:
            return [float(len(text))]

    assert embed_queries(OneByOne(), ["a", "abc"]) == [[1.0], [3.0]]
