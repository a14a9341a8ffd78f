"""The citation check's shared vector memory: exact, bounded, shared by the scorers of one embedder."""

from __future__ import annotations

from assistant.citations import SupportScorer, VectorMemory, vector_memory
from assistant.embeddings import E5Embeddings


class CountingEmbeddings(E5Embeddings):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += texts
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.embedded.append(text)
        return super().embed_query(text)


SENTENCES = ["Parties shall endeavour to integrate culture in their development policies.",
             "Cultural diversity widens the range of options open to everyone."]


def test_a_remembered_vector_is_the_one_the_embedder_computes():
    embeddings = CountingEmbeddings()
    memory = VectorMemory(embeddings)
    first = memory.vectors(SENTENCES, query=False)
    again = memory.vectors(list(reversed(SENTENCES)), query=False)
    assert again == list(reversed(first)) and embeddings.embedded == SENTENCES  # embedded once, in one batch
    assert first == E5Embeddings().embed_documents(SENTENCES)
    as_query = memory.vectors(SENTENCES[:1], query=True)
    assert as_query != first[:1] and embeddings.embedded[-1] == SENTENCES[0]  # "query: " and "passage: " differ


def test_the_memory_forgets_the_least_recently_used_beyond_its_capacity():
    embeddings = CountingEmbeddings()
    memory = VectorMemory(embeddings, capacity=2)
    memory.vectors(["one", "two"], query=False)
    memory.vectors(["one"], query=False)  # "two" is now the least recently used
    memory.vectors(["three"], query=False)
    memory.vectors(["one", "three"], query=False)
    assert embeddings.embedded == ["one", "two", "three"]
    memory.vectors(["two"], query=False)
    assert embeddings.embedded[-1] == "two"


def test_scorers_of_one_embedder_share_what_earlier_answers_embedded():
    embeddings = CountingEmbeddings()
    first, second = SupportScorer(embeddings), SupportScorer(embeddings)
    assert first.memory is second.memory is vector_memory(embeddings)
    claim = "Culture belongs in development policies."
    first._claim_vector(claim)
    second._claim_vector(claim)
    assert embeddings.embedded == [claim]
    assert SupportScorer(CountingEmbeddings()).memory is not first.memory  # another embedder, another memory
