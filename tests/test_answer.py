"""The answer engine end to end on the real index, with the extractive backend (no model)."""

from __future__ import annotations

import asyncio

import pytest

from assistant.answer import MAX_QUESTION_CHARS, AnswerEngine, AnswerRequest, FinalEvent, InputError, SourcesEvent, TokenEvent
from assistant.messages import message
from assistant.prompts import load_all
from assistant.retrieval import Retriever
from conftest import DEV_SET, KNOWLEDGE, make_settings
from eval.metrics import load_questions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(default_index) -> AnswerEngine:
    settings = make_settings(default_index, llm_backend="extractive")
    return AnswerEngine(settings, Retriever(settings), model=None)


def run(engine: AnswerEngine, request: AnswerRequest):
    return asyncio.run(engine.answer(request))


def assert_citations_verbatim(engine: AnswerEngine, answer) -> None:
    store = engine.retriever.library.store
    for citation in answer.citations:
        page = store.page_text(citation.doc_id, citation.page_index)
        assert page[citation.quote_start : citation.quote_end] == citation.quote
        source = KNOWLEDGE / citation.source_file
        if source.suffix in {".md", ".txt"}:
            assert citation.quote in source.read_text(encoding="utf-8")
        assert f"[{citation.n}]" in answer.answer


def test_dev_set_extractive(engine):
    questions = load_questions(DEV_SET)
    answered = 0
    for q in questions:
        answer = run(engine, AnswerRequest(q.question, mode=q.mode))
        assert_citations_verbatim(engine, answer)
        assert answer.language == q.language
        if not q.answerable and q.id == "dev-08":
            assert answer.abstained and answer.citations == []
        if q.answerable and not answer.abstained:
            answered += 1
            assert answer.citations, q.id
            assert answer.answer.startswith("*" + message("extractive_label", answer.language))
    assert answered >= 0.8 * sum(q.answerable for q in questions)


def test_stream_yields_sources_before_tokens(engine):
    async def collect():
        return [event async for event in engine.stream(AnswerRequest("What is the World Heritage Fund?"))]

    events = asyncio.run(collect())
    kinds = [type(e) for e in events]
    assert kinds[0] is SourcesEvent and kinds[-1] is FinalEvent
    assert TokenEvent in kinds and kinds.index(SourcesEvent) < kinds.index(TokenEvent)


def test_brief_and_draft_have_sections(engine):
    brief = run(engine, AnswerRequest("Brief me on Vietnam's cultural diplomacy principles", mode="brief"))
    assert not brief.abstained and "## " in brief.answer
    draft = run(engine, AnswerRequest("Draft a recommendation on artist mobility between Asia and Europe", mode="draft"))
    assert not draft.abstained and "## Principles it draws on" in draft.answer or "## Past challenges" in draft.answer


@pytest.mark.parametrize("question, words", [("", "empty"), ("   \n\t ", "empty"), ("😀🎉🙏", "words")], ids=["empty", "blank", "emoji"])
def test_unusable_questions_get_clear_messages(engine, question, words):
    with pytest.raises(InputError, match=words):
        run(engine, AnswerRequest(question))


def test_huge_question_is_truncated_with_notice(engine):
    question = "What is the World Heritage Fund? " + "x" * 100_000
    answer = run(engine, AnswerRequest(question))
    assert any("only the first" in n for n in answer.notices)
    assert len(answer.query) <= MAX_QUESTION_CHARS


def test_follow_up_uses_history(engine):
    history = [{"role": "user", "content": "What is the World Heritage Fund?"},
               {"role": "assistant", "content": "It is a trust fund."}]
    answer = run(engine, AnswerRequest("Where does its money come from?", history=history))
    assert "World Heritage Fund" in answer.query
    assert any(c.source_file == "unesco-1972-world-heritage-convention.md" for c in answer.citations)


def test_prompts_load_and_have_placeholders():
    prompts = load_all()
    assert {"ask", "brief", "draft", "synthesis", "rules", "rewrite"} <= set(prompts)
    assert "{passages}" in prompts["ask"].template
