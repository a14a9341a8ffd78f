"""The word lexicon: library words with vectors, and a request's words carried into them for BM25."""

from __future__ import annotations

import numpy as np
from conftest import KNOWLEDGE, copy_index, make_settings

from ingest.lexicon import Lexicon, WordTranslator, library_words

CHUNKS = [
    "Parties shall protect public service broadcasting and cultural heritage.",
    "Heritage protection requires broadcasting rules; the Parties shall report.",
    "A single mention of Xanadu.",
]


def test_library_words_recur_in_several_chunks_and_skip_stopwords():
    words = library_words(CHUNKS)
    assert {"heritage", "broadcasting", "parties", "shall"} <= set(words)
    assert "xanadu" not in words  # in one chunk only
    assert "the" not in words and "and" not in words
    assert library_words(CHUNKS, limit=2) == words[:2]


def test_a_rebuild_embeds_only_new_words_and_another_embedder_starts_afresh():
    calls: list[list[str]] = []

    def embed(words):
        calls.append(list(words))
        return [np.random.default_rng(len(w)).normal(size=8) for w in words]

    first = Lexicon.build(["heritage", "broadcasting"], embed, "model-a")
    second = Lexicon.build(["heritage", "broadcasting", "museum"], embed, "model-a", previous=first)
    assert calls == [["heritage", "broadcasting"], ["museum"]]
    assert np.allclose(second.matrix[0], first.matrix[0])
    Lexicon.build(["heritage"], embed, "model-b", previous=second)
    assert calls[-1] == ["heritage"]


def test_saved_lexicon_reloads_and_a_bad_or_foreign_file_gives_an_empty_one(tmp_path):
    path = tmp_path / "lexicon.npz"
    vectors = np.eye(3, dtype=np.float32)
    Lexicon(["heritage", "museum", "treaty"], vectors, "model-a").save(path)
    loaded = Lexicon.load(path, "model-a")
    assert loaded.words == ["heritage", "museum", "treaty"]
    assert loaded.nearest(np.array([[0.1, 0.0, 1.0], [1.0, 1.0, 0.0]]), threshold=0.9) == ["treaty", None]
    assert len(Lexicon.load(path, "model-b")) == 0  # vectors of another model are not comparable
    path.write_bytes(b"not a numpy archive")
    assert len(Lexicon.load(path, "model-a")) == 0
    assert len(Lexicon.load(tmp_path / "missing.npz", "model-a")) == 0


def test_french_and_spanish_words_are_carried_into_english_library_words():
    """With the real multilingual model: each word is embedded as users' words are."""
    from assistant.embeddings import E5Embeddings, embed_queries

    embeddings = E5Embeddings()
    words = ["recommendations", "participation", "society", "civil", "measure", "protection", "museum", "treaty"]
    lexicon = Lexicon.build(words, lambda ws: embed_queries(embeddings, ws), embeddings.name)
    translator = WordTranslator(lambda ws: embed_queries(embeddings, ws))
    french = translator.library_query("Quelles recommandations pour protéger la participation ?", "fr", lexicon)
    assert french is not None and {"recommendations", "participation", "protection"} <= set(french.split())
    spanish = translator.library_query("¿Cómo implicar a la sociedad civil?", "es", lexicon)
    assert spanish is not None and {"society", "civil"} <= set(spanish.split())
    assert "treaty" not in french.split() + spanish.split()  # nothing near it was asked
    # English needs no carrying; a language without a stopword list here is left as it is
    assert translator.library_query("How to protect museums?", "en", lexicon) is None
    assert translator.library_query("Làm thế nào để bảo vệ di sản?", "vi", lexicon) is None


def test_the_default_library_searches_a_french_request_with_its_own_words(default_retriever):
    lexicon = default_retriever.library.lexicon
    assert len(lexicon) > 1000 and "heritage" in lexicon
    query, weight = default_retriever._lexical_query(
        "Quelles recommandations le rapport fait-il pour renforcer la participation des acteurs culturels ?"
    )
    assert {"recommendations", "report", "participation"} <= set(query.split()) and weight > 0.1
    assert default_retriever._lexical_query("Which recommendations does the report make?")[0].startswith("Which")


def test_an_index_built_before_the_lexicon_gets_one_at_the_next_ingest(default_index, tmp_path):
    from ingest.library import Library
    from ingest.pipeline import ingest_paths

    settings = make_settings(copy_index(default_index, tmp_path / "data"))
    settings.lexicon_path.unlink()
    assert not Library.open(settings).lexical_in_sync()
    results = ingest_paths([KNOWLEDGE], settings)
    assert {r.status for r in results} == {"unchanged"}  # no document is indexed again
    library = Library.open(settings)
    assert library.lexical_in_sync() and len(library.lexicon) > 1000
