"""Hybrid retrieval on the real default library (real embedder, real Chroma, real BM25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.retrieval import SearchFilters
from conftest import DEV_SET
from eval.metrics import gold_ranks, load_questions, recall_at

pytestmark = pytest.mark.slow
RECALL_FLOOR = 0.9  # the target for the dev set
VALIDATION_SET = Path(__file__).resolve().parents[1] / "eval" / "questions" / "validation.jsonl"
# Written blind from the corpus (17 long multi-facet briefs, drafts and questions, 50 gold quotes):
# measured 0.42 with one query per request, 0.54 with instruments cited by year and facets searched.
VALIDATION_FLOOR = 0.5


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


def test_multi_facet_requests_find_evidence_for_their_parts(default_retriever):
    all_ranks: list[int | None] = []
    for q in (q for q in load_questions(VALIDATION_SET) if q.answerable):
        passages = default_retriever.search(q.question, k=5, mode=q.mode)
        all_ranks += gold_ranks([(p.source_file, p.text) for p in passages], q.gold)
    recall = recall_at(all_ranks, 5)
    print(f"validation recall@5 = {recall:.3f} over {len(all_ranks)} gold quotes")
    assert recall >= VALIDATION_FLOOR


def test_an_instrument_cited_by_year_leads(default_retriever):
    french = default_retriever.search("Que dit la Convention de 1972 sur la coopération internationale ?", k=5)
    assert {p.source_file for p in french[:3]} == {"unesco-1972-world-heritage-convention.md"}
    english = default_retriever.search("What does the 2001 Declaration say about international cooperation?", k=5)
    assert {p.source_file for p in english[:3]} == {"unesco-2001-universal-declaration-cultural-diversity.md"}


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
