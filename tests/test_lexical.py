"""The lexical index: BM25 over chunks and over their sentences, persisted and rebuilt when its form changes."""

from __future__ import annotations

import json

from ingest.lexical import IDS_FILE, LexicalIndex, bm25_scores

FILLER = ("The States Parties recall the principles of the Charter. They note the work of earlier conferences on "
          "many subjects. They consider the reports of the Director-General and of the committees. ")
# A long passage that answers in one sentence among many (a preamble), and a short one that only shares words.
PREAMBLE = (FILLER * 3 + "Recognizing that intangible heritage is a guarantee of sustainable development in every "
            "community. " + FILLER * 3)
SHORTS = ["Development banks fund heritage sites.", "Heritage tourism drives development in cities.",
          "Development aid rarely reaches heritage."]  # share two words each, densely
OTHER = "Museums keep inventories of their collections and lend objects for exhibitions abroad."
QUERY = "heritage and sustainable development"


def test_a_long_passage_is_found_by_its_best_sentence(tmp_path):
    ids, texts = ["preamble", "s1", "s2", "s3", "other"], [PREAMBLE, *SHORTS, OTHER]
    by_chunk = [ids[i] for i, score in sorted(enumerate(bm25_scores(QUERY, texts)), key=lambda x: -x[1]) if score > 0]
    assert by_chunk.index("preamble") == 3  # its one sentence is diluted by the rest of it
    index = LexicalIndex(tmp_path / "bm25")
    index.rebuild(ids, texts)
    hits = [cid for cid, _ in index.search(QUERY, 5)]
    assert hits.index("preamble") < 3 and "other" not in hits  # its best sentence lifts it
    # restricted to some chunks, the sentence ranking is restricted too
    assert [cid for cid, _ in index.search(QUERY, 5, frozenset({"s1", "other"}))] == ["s1"]
    assert index.search("intangible heritage", 3, frozenset({"other"})) == []


def test_the_saved_index_is_reloaded_and_an_older_form_is_rebuilt(tmp_path):
    folder = tmp_path / "bm25"
    LexicalIndex(folder).rebuild(["preamble", "short"], [PREAMBLE, SHORTS[0]])
    reloaded = LexicalIndex(folder)
    assert reloaded.chunk_ids == ["preamble", "short"]
    assert reloaded.search("guarantee of sustainable development", 2)[0][0] == "preamble"
    saved = json.loads((folder / IDS_FILE).read_text())
    del saved["version"]  # as written before the sentence index existed
    (folder / IDS_FILE).write_text(json.dumps(saved))
    older = LexicalIndex(folder)
    assert older.chunk_ids == [] and older.search("sustainable development", 2) == []  # out of sync: the library rebuilds it
