"""Hybrid retrieval on the real default library (real embedder, real Chroma, real BM25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import retrieval
from assistant.retrieval import SearchFilters
from conftest import DEV_SET
from eval.metrics import gold_ranks, load_questions, recall_at

pytestmark = pytest.mark.slow
RECALL_FLOOR = 0.9  # the CI gate for the dev set (its target, 0.95, is not met: 0.923)
QUESTIONS = Path(__file__).resolve().parents[1] / "eval" / "questions"
# Regression guards below the current figures of our own sets, all written blind from the corpus
# (docs/evaluation.md). validation.jsonl (17 long multi-facet briefs, drafts and questions, 50 gold quotes):
# 0.42 with one query per request, 0.54 with instruments cited by year and facets searched, 0.56 with sentence
# vectors, 0.62 with listed items as facets, 0.66 with BM25 over sentences, 0.68 on an AVX2 machine whose embedder
# rounds differently, 0.70 with facets searched beyond the cited instruments. blind2.jsonl (24 requests in five
# languages, 53 gold quotes): 0.566 → 0.736 with writing-only parts dropped and the parts listed after a colon
# searched first; blind3.jsonl (20, 54 gold quotes, not read before that change): 0.648 → 0.722, 0.741 with the
# statements before a request's first question searched after it; blind4.jsonl (24, 52 gold quotes; its
# answerable requests not read): 0.673, 0.692 with a cited instrument's bodies kept in the search; blind3 0.815 with
# one context facet. blind5.jsonl (26 mostly short questions mirroring the dev set, 39 gold quotes): 0.692 unread,
# 0.769 with those two changes and instruments named without their year.
SET_FLOORS = {"validation.jsonl": 0.6, "blind2.jsonl": 0.65, "blind3.jsonl": 0.65, "blind4.jsonl": 0.6, "blind5.jsonl": 0.65}


def test_recall_at_5_on_dev_set(default_retriever):
    questions = [q for q in load_questions(DEV_SET) if q.answerable]
    all_ranks: list[int | None] = []
    per_question = {}
    for q in questions:
        passages = default_retriever.search(q.question, k=5, mode=q.mode)
        ranks = gold_ranks([(p.source_file, p.text) for p in passages], q.gold)
        per_question[q.id] = ranks
        all_ranks += ranks
    recall = recall_at(all_ranks, 5)
    print(f"retrieval recall@5 = {recall:.3f} over {len(all_ranks)} gold quotes")
    # Measured 0.923 (24/26); 0.885 before requests were also searched facet by facet.
    assert recall >= RECALL_FLOOR, {k: v for k, v in per_question.items() if None in v}
    french = [q.id for q in questions if q.language == "fr"]
    assert any(all(r is not None for r in per_question[i]) for i in french), "no French question found its evidence"


@pytest.mark.parametrize("question_set", sorted(SET_FLOORS))
def test_multi_facet_requests_find_evidence_for_their_parts(default_retriever, question_set):
    all_ranks: list[int | None] = []
    for q in (q for q in load_questions(QUESTIONS / question_set) if q.answerable):
        passages = default_retriever.search(q.question, k=5, mode=q.mode)
        all_ranks += gold_ranks([(p.source_file, p.text) for p in passages], q.gold)
    recall = recall_at(all_ranks, 5)
    print(f"{question_set} recall@5 = {recall:.3f} over {len(all_ranks)} gold quotes")
    assert recall >= SET_FLOORS[question_set]


def test_an_instrument_cited_by_year_leads(default_retriever):
    french = default_retriever.search("Que dit la Convention de 1972 sur la coopération internationale ?", k=5)
    assert {p.source_file for p in french[:3]} == {"unesco-1972-world-heritage-convention.md"}
    english = default_retriever.search("What does the 2001 Declaration say about international cooperation?", k=5)
    assert {p.source_file for p in english[:3]} == {"unesco-2001-universal-declaration-cultural-diversity.md"}


def test_within_a_cited_instrument_the_topic_ranks_not_the_citation(default_retriever):
    # The request's "1954 Hague Convention" once put the Convention's signature clause (which holds "1954") first.
    passages = default_retriever.search("When may the 1954 Hague Convention's protection be waived for military necessity?", k=5)
    assert "waived only in cases where military necessity" in passages[0].text
    assert not any(p.section.endswith(("Signature", "Registration")) for p in passages), [p.section for p in passages]
    french = default_retriever.search(
        "La Convention de La Haye de 1954 permet-elle de lever la protection d'un bien culturel pour raison de nécessité militaire ?", k=5)
    assert {p.source_file for p in french} == {"hague-1954-convention-cultural-property-armed-conflict.md"}
    assert any("Withdrawal of immunity" in p.section for p in french), [p.section for p in french]


def test_an_instrument_named_without_its_year_leads(default_retriever):
    passages = default_retriever.search(
        "Under the intangible heritage convention, who may submit a request for international assistance?", k=5)
    assert {p.source_file for p in passages} == {"unesco-2003-convention-intangible-cultural-heritage.md"}
    assert "jointly submitted" in passages[0].text


def test_a_body_of_a_cited_instrument_stays_in_the_search(default_retriever):
    # "el Comité Intergubernamental de la Convención de 2005" was once dropped whole as the citation,
    # leaving the Convention's title words to rank its preamble first.
    passages = default_retriever.search("¿Cuántos Estados integran el Comité Intergubernamental de la Convención de 2005?", k=5)
    assert "composed of representatives of 18 States" in passages[0].text, [p.section for p in passages]


def test_a_facet_finds_evidence_outside_the_cited_instrument(default_retriever):
    # Facets were once searched only within the instruments the request cites, so the second part here,
    # which only the ASEF lab report answers, found nothing.
    request = ("Draft a joint recommendation grounded in the 2003 Convention: how communities safeguard their living "
               "heritage, and how artist mobility between Asia and Europe can be made fairer.")
    passages = default_retriever.search(request, k=5, mode="draft")
    sources = [p.source_file for p in passages]
    assert sources[0] == "unesco-2003-convention-intangible-cultural-heritage.md", sources
    assert any(p.source_file.startswith("asef-linkup") and "mobility" in p.text for p in passages), sources


def test_cross_lingual_question_finds_english_passage(default_retriever):
    passages = default_retriever.search(
        "Was bedeutet 'innere Wärme, äußere Harmonie' in der vietnamesischen Diplomatie?", k=5
    )
    assert any(p.source_file.startswith("wvr-culture") for p in passages)


def test_country_filter_restricts_results(default_retriever):
    filters = SearchFilters.parse(["country=Vietnam"])
    passages = default_retriever.search("cultural diplomacy principles", k=5, filters=filters)
    assert passages and {p.source_file for p in passages} == {"wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"}


def test_brief_on_a_named_counterpart_leads_with_its_documents(default_retriever):
    question = "Brief me before a meeting with Vietnamese counterparts on cultural cooperation."
    brief = default_retriever.search(question, k=8, mode="brief")
    plain = default_retriever.search(question, k=8, mode="ask")
    vietnam = "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"
    assert brief[0].source_file == vietnam
    assert sum(p.source_file == vietnam for p in brief) > sum(p.source_file == vietnam for p in plain)
    # a named counterpart narrows nothing: other documents still follow
    assert default_retriever.search("Brief me on Vietnam and UNESCO's conventions", k=10, mode="brief")


def test_year_and_type_filters(default_retriever):
    filters = SearchFilters.parse(["doc_type=convention"], "1950:1975")
    passages = default_retriever.search("protection of cultural property", k=8, filters=filters)
    assert passages
    assert all(p.doc_type == "convention" and 1950 <= p.year <= 1975 for p in passages)


def test_results_are_diverse(default_retriever):
    passages = default_retriever.search("World Heritage Fund contributions", k=5)
    texts = [" ".join(p.text.split()) for p in passages]
    assert len(set(texts)) == len(texts)


def test_a_search_deeper_than_one_batch_of_rows_loses_no_passage(default_retriever, monkeypatch):
    # candidates' rows are read from the library a batch at a time; read all at once, the same passages come back
    deep = [p.chunk_id for p in default_retriever.search("World Heritage Fund contributions", k=45)]
    assert len(deep) == 45 and len(set(deep)) == 45
    monkeypatch.setattr(retrieval, "ROWS_PER_FETCH", 10_000)
    assert [p.chunk_id for p in default_retriever.search("World Heritage Fund contributions", k=45)] == deep


def test_passage_text_is_exact_slice_of_page(default_retriever):
    store = default_retriever.library.store
    for p in default_retriever.search("export certificate for cultural property", k=5):
        assert store.page_text(p.doc_id, p.page_index)[p.char_start : p.char_end] == p.text


def test_filter_parsing_errors_are_clear():
    with pytest.raises(ValueError, match="key=value"):
        SearchFilters.parse(["country"])
    with pytest.raises(ValueError, match="Unknown filter"):
        SearchFilters.parse(["colour=red"])
    with pytest.raises(ValueError, match="2020:2026"):
        SearchFilters.parse(None, "last year")


BURIED = "Artists from the Global South need fast visa procedures to tour European festivals."
LONG_PASSAGE = " ".join([
    "The archive committee met on Tuesday to review the storage budget for the coming year.",
    "Its members approved new shelving for the periodicals reading room on the second floor.",
    "The catalogue of maps will be digitised in three phases by an external contractor.",
    BURIED,
    "Cleaning of the ventilation system is planned for the summer closing weeks of August.",
    "The committee will publish its minutes in the staff newsletter before the next meeting.",
    "New lockers for visiting researchers will be installed next to the cloakroom in spring.",
    "The library's opening hours stay unchanged during the public holidays of the winter.",
    "A fire drill for all staff is scheduled for the first Monday of October at ten o'clock.",
])
BROAD_PASSAGE = ("Touring artists and festivals across Europe depend on mobility programmes, funding and partnerships "
                 "between cultural institutions. Mobility schemes help performers travel.")


def test_a_passage_is_found_by_its_best_sentence_not_only_its_average(tmp_path):
    from assistant.retrieval import Retriever
    from conftest import make_settings
    from ingest.chunk import sentence_units
    from ingest.pipeline import ingest_paths

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "minutes.md").write_text(f"# Committee minutes\n\n{LONG_PASSAGE}\n", encoding="utf-8")
    (folder / "cooperation.md").write_text(f"# Cooperation\n\n{BROAD_PASSAGE}\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    assert not [r for r in ingest_paths([folder], settings) if r.failed]
    retriever = Retriever(settings)
    store = retriever.library.store
    rows = store.chunk_rows()
    long_chunk = next(r for r in rows if BURIED in r["text"])
    stored = store.sentence_vectors([r["chunk_id"] for r in rows], 384)
    assert stored[long_chunk["chunk_id"]].shape == (len(sentence_units(long_chunk["text"])), 384) == (9, 384)

    query = "visa procedures so that artists from the Global South can tour festivals in Europe"
    vector = retriever.library.vectors.embeddings.embed_query(query)
    sentence_best = float((stored[long_chunk["chunk_id"]].astype("float32") @ vector).max())
    raw = retriever.library.vectors.query(vector, 10)
    assert raw[0][0] != long_chunk["chunk_id"]  # on the passages' own vectors the broad passage leads
    hits = dict(raw)
    assert sentence_best > hits[long_chunk["chunk_id"]] + 0.03  # the sentence matches better than the passage's average
    by_sentence = Retriever(settings.model_copy(update={"sentence_weight": 1.0}))
    ranked = by_sentence._dense(vector, 10, None, None, 0)
    assert ranked[0][0] == long_chunk["chunk_id"]
    assert ranked[0][1] == pytest.approx(hits[long_chunk["chunk_id"]])  # the score stays the passage's similarity

    # removing the document removes its sentence vectors with its chunks
    retriever.library.remove("minutes.md")
    assert not store.sentence_vectors([long_chunk["chunk_id"]], 384)


def test_a_few_allowed_documents_are_searched_exactly_as_chroma_would(default_retriever):
    docs = [d for d in default_retriever.allowed_documents(None, None).values() if d.year in (1970, 2003)]
    doc_ids = [d.doc_id for d in docs]
    chunks = default_retriever._allowed_chunks(frozenset(doc_ids))
    vector = default_retriever.library.vectors.embeddings.embed_query("return of stolen cultural property")
    exact = default_retriever._exact(vector, 10, chunks)
    through_chroma = default_retriever.library.vectors.query(vector, 10, doc_ids)
    assert [cid for cid, _ in exact] == [cid for cid, _ in through_chroma]
    assert [s for _, s in exact] == pytest.approx([s for _, s in through_chroma], abs=1e-4)
    assert default_retriever._exact(vector, 10, chunks) == exact  # cached vectors, same answer
