"""The answer engine end to end on the real index, with the extractive backend (no model)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re

import pytest

from assistant.answer import MAX_QUESTION_CHARS, AnswerEngine, AnswerRequest, FinalEvent, InputError, SourcesEvent, TokenEvent
from assistant.citations import cited_numbers, split_sentences, strip_markers
from assistant.messages import message
from assistant.prompts import load_all
from assistant.retrieval import Retriever, SearchFilters
from assistant.tokens import count_tokens
from conftest import DEV_SET, KNOWLEDGE, ScriptedModel, make_settings, prose_sentences
from eval.metrics import contains_gold, load_questions

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


def assert_no_quote_repeated(answer) -> None:
    """No two citations of an extractive answer share text: a clause, or the pair of clauses that holds it, once."""
    places = sorted((c.doc_id, c.page_index, c.quote_start, c.quote_end) for c in answer.citations)
    for a, b in zip(places, places[1:]):
        assert a[:2] != b[:2] or a[3] <= b[2], answer.answer


def test_dev_set_extractive(engine):
    questions = load_questions(DEV_SET)
    answered = 0
    for q in questions:
        answer = run(engine, AnswerRequest(q.question, mode=q.mode))
        assert_citations_verbatim(engine, answer)
        assert_no_quote_repeated(answer)
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
    assert_no_quote_repeated(brief)
    assert_no_quote_repeated(draft)


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


# A draft the citation check removes whole: the engine answers with labelled quotes, so a test sees whether the
# retrieval gate let the request through without depending on what a model would write.
UNVERIFIABLE = "Every Party must build opera houses on the Moon [1]."


def model_engine(engine: AnswerEngine, reply: str) -> AnswerEngine:
    return AnswerEngine(engine.settings, engine.retriever, model=ScriptedModel(reply))


def test_a_draft_whose_citations_all_fail_the_check_falls_back_to_labelled_quotes(engine):
    question = "What does the 2005 Convention say about cultural policies?"
    reply = "The Convention obliges every Party to spend 9 percent of its budget on opera houses on the Moon [1]."
    answer = run(model_engine(engine, reply), AnswerRequest(question))
    assert not answer.abstained and answer.citations and answer.model_fallback and not answer.model_declined
    assert answer.answer.startswith("*" + message("model_fallback_label", "en"))
    assert "Moon" not in answer.answer
    assert_citations_verbatim(engine, answer)


def test_a_draft_that_is_only_the_sentinel_is_respected(engine, caplog):
    # off-topic requests the gate let through ("the weather in Prague next week") drew only the sentinel from the
    # model, and quoting the lab's Prague dates instead answered nothing that was asked
    question = "What will the weather be like in Prague next week?"
    request = AnswerRequest(question)
    assert not engine.refuses(question, question, engine.search(question, request), request)  # the model decides
    with caplog.at_level(logging.INFO, logger="assistant.answer"):
        answer = run(model_engine(engine, "NOT_IN_LIBRARY"), request)
    assert answer.abstained and not answer.citations and answer.model_declined and not answer.model_fallback
    assert answer.answer.startswith(message("not_in_library", "en"))
    assert any("found nothing in the passages" in r.getMessage() for r in caplog.records)  # operators see declines


def test_a_title_becomes_a_heading_not_a_claim():
    from assistant.replies import with_title_as_heading

    checked = "## Title\nA Joint Recommendation on Cultural Goods in Trade Agreements †\n\n## Recommendation\nFund it [1]."
    assert with_title_as_heading(checked) == "# A Joint Recommendation on Cultural Goods in Trade Agreements\n\n## Recommendation\nFund it [1]."
    assert with_title_as_heading("**Note de synthèse : le Viet Nam et la culture** †\nTexte [1].") == (
        "# Note de synthèse : le Viet Nam et la culture\nTexte [1].")
    # a title the check found a passage for keeps its citation; a sentence, a list, a lone line are no titles
    for text in ["## Title\nPreparing in Peacetime to Protect Cultural Property [1]\n## Recommendation\nx [2].",
                 "The Convention requires reports every four years †.\nMore [1].",
                 "## Title\n- Fund residencies †\n## Recommendation\nx [1].",
                 "## Context\nVietnam held talks with Laos †\nMore [1].",
                 "A Joint Recommendation on Cultural Goods †"]:
        assert with_title_as_heading(text) == text


def test_a_draft_that_only_cites_questions_falls_back_to_quotes(engine):
    # A question built from a passage's own words keeps its citation, but asks rather than tells: an answer of
    # cited questions alone gives the user nothing from the library.
    question = "What does the 2005 Convention say about cultural policies?"
    passages = engine.retriever.search(question, k=6)
    sentence = prose_sentences(passages[0].text)[0].rstrip(" .")
    answer = run(model_engine(engine, f"Is it true that {sentence} [1]?"), AnswerRequest(question))
    assert answer.model_fallback and answer.citations
    assert any(cited_numbers(s) and not s.strip().endswith("?") for s in split_sentences(answer.answer))


def test_a_claim_no_passage_supports_is_marked_and_explained(engine):
    question = "What does the 2005 Convention say about cultural policies?"
    passages = engine.retriever.search(question, k=6)
    sentence = prose_sentences(passages[0].text)[0]
    invented = "Museums across Europe will triple their touring budgets for Asian artists by 2030"
    answer = run(model_engine(engine, f"{sentence} [1]. {invented}."), AnswerRequest(question))
    assert f"{invented} †." in answer.answer  # kept as the model's own, but visibly not from the library
    assert answer.answer.endswith("*" + message("unsourced_note", "en") + "*")
    assert answer.verification.uncited_sentences == 1 and len(answer.citations) == 1
    cited_only = run(model_engine(engine, f"{sentence} [1]."), AnswerRequest(question))
    assert "†" not in cited_only.answer  # no mark, no note when every claim is sourced


def test_a_claim_on_a_name_the_passage_lacks_loses_its_citation_and_its_empty_heading(engine):
    # a 1.5B model's brief opened "## Context / Vietnam's deputy minister of culture will be meeting on Tuesday [1]"
    question = "Brief me on what the 2005 Convention says about cultural policies."
    passages = engine.retriever.search(question, k=8, mode="brief")
    sentence = prose_sentences(passages[0].text)[0]
    reply = (f"## Context\nVietnam's deputy minister of culture will be meeting on Tuesday [1].\n"
             f"## Principles\n{sentence} [1].")
    answer = run(model_engine(engine, reply), AnswerRequest(question, mode="brief"))
    assert "Tuesday" not in answer.answer and "## Context" not in answer.answer  # nothing left under it
    assert "## Principles" in answer.answer and [c.chunk_id for c in answer.citations] == [passages[0].chunk_id]


def test_a_brief_that_copies_its_list_under_every_heading_shows_it_once(engine):
    # a 1.5B model's French brief put the same four cited bullets under three headings
    question = "Brief me on what the 2005 Convention says about cultural policies."
    passages = engine.retriever.search(question, k=8, mode="brief")
    first, second = prose_sentences(passages[0].text)[0], prose_sentences(passages[1].text)[0]
    bullets = f"- {first} [1].\n- {second} [2]."
    reply = f"## Principles\n{bullets}\n\n## Common ground\n{bullets}\n\n## Talking points\n{bullets}\n- What comes next?"
    answer = run(model_engine(engine, reply), AnswerRequest(question, mode="brief"))
    assert answer.answer.count(strip_markers(first).strip()[:60]) == 1, answer.answer
    assert "## Principles" in answer.answer and "## Common ground" not in answer.answer  # nothing new under it
    assert "## Talking points" in answer.answer and "What comes next?" in answer.answer
    assert sorted(c.chunk_id for c in answer.citations) == sorted([passages[0].chunk_id, passages[1].chunk_id])


def test_a_recorded_draft_is_checked_as_the_answer_was(engine):
    # eval.drafts measures changes to the checking steps on recorded model replies: it must reach what the app did
    from eval.drafts import check_one

    question = "Brief me on what the 2005 Convention says about cultural policies."
    passages = engine.retriever.search(question, k=8, mode="brief")
    first, second = prose_sentences(passages[0].text)[0], prose_sentences(passages[2].text)[0]
    reply = f"## Principles\n- {first} [1].\n- {second} [3].\n\n## Common ground\n- {first} [1]."
    answer = run(model_engine(engine, reply), AnswerRequest(question, mode="brief"))
    assert answer.model_draft is not None and answer.model_draft.reply == reply
    record = json.loads(json.dumps({"id": "b-1", "question": question, "mode": "brief", "reply": reply,
                                    "passages": [dataclasses.asdict(p) for p in answer.model_draft.passages]}))
    checked = check_one(engine, record)
    assert checked["text"] == answer.answer and len(checked["sentences"]) == 3  # the heading and two statements
    assert checked["citations"] == [[c.source_file, c.quote] for c in answer.citations] and len(answer.citations) == 2
    assert run(engine, AnswerRequest(question, mode="brief")).model_draft is None  # extractive: no model draft


def test_a_draft_that_restates_the_request_loses_the_echo_not_its_claims(engine):
    question = "Draft a joint recommendation on how Parties should integrate culture in their development policies."
    passages = engine.retriever.search(question, k=8, mode="draft")
    sentence = prose_sentences(passages[0].text)[0]
    reply = f"Draft a joint recommendation on how Parties should integrate culture in development policies.\n- {sentence} [1]."
    answer = run(model_engine(engine, reply), AnswerRequest(question, mode="draft"))
    assert "Draft a joint recommendation" not in answer.answer and "†" not in answer.answer
    assert answer.verification.uncited_sentences == 0 and len(answer.citations) == 1


def test_sentinel_after_a_cited_answer_is_dropped_not_taken_as_abstention(engine):
    question = "What does the 2005 Convention say about cultural policies?"
    passages = engine.retriever.search(question, k=6)
    sentence = prose_sentences(passages[0].text)[0]
    answer = run(model_engine(engine, f"{sentence} [1].\nNOT_IN_LIBRARY"), AnswerRequest(question))
    assert not answer.abstained and not answer.model_fallback and "NOT_IN_LIBRARY" not in answer.answer
    assert not answer.answer.startswith("*")  # the model's own (verified) answer, no fallback label
    assert [c.chunk_id for c in answer.citations] == [passages[0].chunk_id]


def test_out_of_scope_question_abstains_whatever_the_model_would_write(engine):
    answer = run(model_engine(engine, "The Convention sets a quota of 40 % [1]."),
                 AnswerRequest("What is the recipe for a traditional Bavarian pretzel?"))
    assert answer.abstained and answer.citations == []
    assert answer.answer.startswith(message("not_in_library", "en"))


def test_an_empty_library_or_filters_that_leave_no_document_are_named_not_called_not_covered(engine, tmp_path):
    # "The library does not cover this question" would send a user on a fresh clone, or one whose filters exclude
    # every document, looking for better words instead of documents.
    empty_settings = make_settings(tmp_path / "empty", llm_backend="extractive")
    empty = AnswerEngine(empty_settings, Retriever(empty_settings), model=None)
    answer = run(empty, AnswerRequest("Que dit la Convention de 1970 sur les musées ?"))
    assert answer.abstained and answer.citations == []
    assert answer.answer == message("library_empty", "fr")
    request = AnswerRequest("What does the 1970 Convention require of museums?", filters=SearchFilters.parse(year="1800:1810"))
    filtered = run(engine, request)
    assert filtered.abstained and filtered.citations == []
    assert filtered.answer == message("filters_exclude_all", "en")
    held = run(engine, dataclasses.replace(request, filters=SearchFilters.parse(year="1970:1970")))
    assert not held.abstained and held.citations  # the same request, with a filter that keeps its document


def test_a_name_the_question_shares_with_a_table_row_makes_no_answer(engine):
    # "France" and "Germany" are in the lab report's participants table; the name earned its row the word-overlap
    # bonus, and the row was quoted as the answer.
    for question in ("What is the GDP of France?", "What is the capital of Germany?"):
        answer = run(engine, AnswerRequest(question))
        assert answer.abstained and answer.citations == [], (question, answer.answer)
    held = run(engine, AnswerRequest("In which city did the ASEF LinkUp participants gather in June 2024?"))
    assert not held.abstained and "Prague" in held.answer  # a question about what the library says of a name


def test_an_instrument_named_by_its_year_is_in_scope_when_its_passages_do_not_repeat_the_year(engine):
    # The 2005 Convention's articles never write "2005": the anchor is met by the document's metadata.
    question = ("Quelles mesures nationales un État partie à la Convention de 2005 peut-il adopter pour protéger la "
                "diversité des expressions culturelles, par exemple en matière d'aide publique ou de radiodiffusion ?")
    passages = engine.retriever.search(question, k=6)
    assert not any("2005" in f"{p.title} {p.section} {p.text}" for p in passages)
    answer = run(engine, AnswerRequest(question))
    assert not answer.abstained and answer.citations
    unknown = run(engine, AnswerRequest("What does the Charter of Luxor of 1997 require?"))
    assert unknown.abstained and unknown.citations == []


def test_an_instrument_the_library_does_not_hold_is_refused_though_its_theme_is_covered(engine):
    # Stolen cultural objects are the 1970 Convention's theme, and 1995 appears in the library (a footnote of
    # the 2001 Declaration): only the missing instrument tells that the question cannot be answered from it.
    question = "What limitation periods does the 1995 UNIDROIT Convention set for claims to recover stolen cultural objects?"
    answer = run(model_engine(engine, "Claims must be brought within three years [1]."), AnswerRequest(question))
    assert answer.abstained and answer.citations == []
    held = run(model_engine(engine, UNVERIFIABLE),
               AnswerRequest("What does the 1970 Convention say about stolen cultural objects?"))
    assert not held.abstained and held.citations  # the instrument it cites is in the library


def test_an_answer_on_a_source_the_library_only_mentions_says_so(engine):
    # The library does not hold the MONDIACULT 2022 Declaration; the ASEF report mentions it. The answer quotes the
    # report, and says that the declaration's own text is not in the library, in the user's language.
    for question, language, wording in [
        ("What does the MONDIACULT 2022 Declaration say about culture and sustainable development?", "en",
         "MONDIACULT 2022 Declaration"),
        ("Que dit la Déclaration MONDIACULT de 2022 sur la culture et le développement durable ?", "fr",
         "Déclaration MONDIACULT de 2022"),
    ]:
        answer = run(engine, AnswerRequest(question))
        assert not answer.abstained and answer.citations, question
        assert any(c.source_file.startswith("asef-linkup") and "MONDIACULT" in c.quote for c in answer.citations)
        assert message("only_mentioned", language, source=wording) in answer.answer, answer.answer
    held = run(engine, AnswerRequest("What does the 2005 Convention say about cultural policies?"))
    assert held.citations and message("only_mentioned", "en", source="2005 Convention") not in held.answer
    assert "only passages that mention it" not in held.answer


def test_an_answer_that_leaves_out_a_missing_source_says_so(engine):
    # Two of the three instruments are in the library: the brief is written from them, under a note that the third
    # is not there, so that it is not taken for an answer on all three.
    question = ("Drawing on the 1970 Convention, the 1972 Convention and the 1995 UNIDROIT Convention, brief me on the "
                "return of stolen cultural property.")
    answer = run(engine, AnswerRequest(question, mode="brief"))
    assert not answer.abstained and answer.citations
    assert message("not_held", "en", source="1995 UNIDROIT Convention") in answer.answer, answer.answer
    assert "1970 Convention”" not in answer.answer  # the held ones get no note


def test_a_protocol_the_library_does_not_hold_is_refused_though_its_convention_is_held(engine):
    # The 1954 Hague Convention is in the library; its 1999 Second Protocol is not, and "Protocol" was no
    # instrument type, so its questions were answered from the Convention's preamble.
    question = "Which cultural property qualifies for enhanced protection under the 1999 Second Protocol to the Hague Convention?"
    answer = run(engine, AnswerRequest(question))
    assert answer.abstained and answer.citations == []
    held = run(engine, AnswerRequest("What does the 1954 Hague Convention ask of armed forces in peacetime?"))
    assert not held.abstained and held.citations


def test_asian_and_european_name_places_the_library_covers_and_ngo_names_nothing(engine):
    # "Asian", "European" and "NGO" were taken for names the library lacks, and this draft was refused.
    question = ("Our working group (a heritage NGO and museum staff) wants a joint recommendation to Asian and European "
                "ministries on preparing in peacetime to protect museum collections from armed conflict.")
    answer = run(engine, AnswerRequest(question, mode="draft"))
    assert not answer.abstained and answer.citations
    assert any(c.source_file.startswith("hague-1954") for c in answer.citations)


def test_a_brief_on_an_organisation_the_library_does_not_hold_is_refused(engine):
    # "Council" of "Goethe Council" is found in other names of the library, which met half its anchors.
    question = ("Next month I meet the director of the Goethe Council. Brief me on the Goethe Council's current strategy "
                "and its budget for cultural relations.")
    answer = run(model_engine(engine, "Its strategy centres on partnerships [1]."), AnswerRequest(question, mode="brief"))
    assert answer.abstained and answer.citations == []
    held = run(model_engine(engine, UNVERIFIABLE), AnswerRequest(
        "Brief me on the Asia-Europe Foundation's lab: what did its participants recommend?", mode="brief"))
    assert not held.abstained and held.citations


def test_when_or_where_a_coming_occasion_is_refused_unless_a_passage_announces_it(engine):
    # The library reports past editions of a lab; their dates answered "when is the next one?".
    question = "Quand aura lieu la prochaine édition du laboratoire de diplomatie culturelle d'ASEF, et où ?"
    answer = run(model_engine(engine, "Elle aura lieu à Singapour [1]."), AnswerRequest(question))
    assert answer.abstained and answer.citations == []
    held = run(model_engine(engine, UNVERIFIABLE), AnswerRequest("Where and when was the pilot edition of ASEF LinkUp held?"))
    assert not held.abstained and held.citations


def test_which_sentences_ask_for_a_coming_occasion():
    from assistant.scope import announces_an_occasion, asks_when_or_where_next
    from assistant.types import Passage

    assert asks_when_or_where_next("Wann findet die nächste Ausgabe des Labors statt?")
    assert asks_when_or_where_next("¿Dónde será la próxima sesión del Comité?")
    assert not asks_when_or_where_next("Next week I meet the ASEF team. Where was the 2024 lab held?")  # two sentences
    assert not asks_when_or_where_next("What are the next steps for artist mobility?")
    text = "The third edition will take place in Hanoi in May; applications close on 1 March."
    passage = Passage("c1", "d1", text, "d1.txt", "Call", "", 2025, "report", "", "", "en", None, 0, "", 0, len(text))
    assert announces_an_occasion([passage])
    past = dataclasses.replace(passage, text="The second edition took place in Prague in June 2024.")
    assert not announces_an_occasion([past])


def test_a_how_long_question_is_answered_with_a_term_written_in_words(engine):
    # "por cuánto tiempo" (how long) was read as "how much", and "a term of four years" holds no digit: the
    # extractive answer was dropped as if its evidence held no figure.
    question = ("En la Convención de 2003 para la Salvaguardia del Patrimonio Cultural Inmaterial, ¿por cuánto tiempo se "
                "elige a los Estados miembros del Comité y pueden ser reelegidos?")
    answer = run(engine, AnswerRequest(question))
    assert not answer.abstained and answer.citations
    assert any("four years" in c.quote for c in answer.citations), [c.quote for c in answer.citations]


def test_a_how_many_question_is_refused_when_its_evidence_numbers_only_provisions(engine):
    # The Fund's passages hold no count of projects; "as provided in Article 18" passed for a figure.
    question = "Wie viele Projekte hat der Internationale Fonds für kulturelle Vielfalt bisher gefördert?"
    answer = run(engine, AnswerRequest(question))
    assert answer.abstained and answer.citations == []
    held = run(engine, AnswerRequest("How many States Members sit on the Intergovernmental Committee of the 2003 Convention?"))
    assert not held.abstained and any("18" in c.quote or "24" in c.quote for c in held.citations), held.answer


def test_a_how_many_question_quotes_the_relevant_sentence_that_holds_the_figure(engine):
    # The most relevant sentence across languages was the Committee's establishment, which holds no number: the
    # question was refused though the next sentence of the same passage gives it.
    question = ("¿Cuántos Estados integran el Comité Intergubernamental de la Convención de 2005 sobre la diversidad de "
                "las expresiones culturales?")
    answer = run(engine, AnswerRequest(question))
    assert not answer.abstained and any("18 States" in c.quote for c in answer.citations), answer.answer


def test_an_edition_the_library_does_not_hold_is_refused_though_another_years_is(engine):
    # The library holds the 2024 (second) edition of ASEF LinkUp, and a 2025 article that never names it.
    question = "Brief me on the outcomes of ASEF LinkUp in 2025: where it was held and what its fellows recommended."
    answer = run(model_engine(engine, "It was held in Prague [1]."), AnswerRequest(question, mode="brief"))
    assert answer.abstained and answer.citations == []
    # the refusal points to the nearest material, each document once with its places
    related = [line for line in answer.answer.splitlines() if line.startswith("- ")]
    assert related and sum("How Do We Navigate Cultural Diplomacy" in line for line in related) == 1
    held = run(model_engine(engine, "Participants gathered in Prague [1]."),
               AnswerRequest("Where was ASEF LinkUp 2024 held?"))
    assert not held.abstained and held.citations


class TranslatingModel(ScriptedModel):
    """Answers with ``reply``; asked to translate, replies with ``translation``."""

    def __init__(self, reply: str, translation: str) -> None:
        super().__init__(reply)
        self.translation = translation
        self.translate_prompts: list[str] = []

    async def stream(self, messages, max_tokens: int, temperature: float = 0.0):
        prompt = messages[-1]["content"]
        if prompt.startswith("Translate the text below"):
            self.translate_prompts.append(prompt)
            yield self.translation
            return
        async for piece in super().stream(messages, max_tokens, temperature):
            yield piece


def _fund_sentence(engine, question: str) -> tuple[int, str]:
    passages = engine.retriever.search(question, k=6)
    index = next(i for i, p in enumerate(passages) if "called “the World Heritage Fund”" in p.text)
    return index + 1, "A Fund for the Protection of the World Cultural and Natural Heritage of Outstanding Universal Value, called “the World Heritage Fund”, is hereby established"


FUND_FR = ("Un Fonds pour la protection du patrimoine mondial culturel et naturel de valeur universelle "
           "exceptionnelle, dénommé « le Fonds du patrimoine mondial », est créé par la présente Convention [{n}].")


def test_answer_in_the_wrong_language_is_translated_and_checked_again(engine):
    question = "Qu'est-ce que le Fonds du patrimoine mondial ?"
    n, sentence = _fund_sentence(engine, question)
    model = TranslatingModel(f"{sentence} [{n}].", "Voici la traduction en français :\n\n" + FUND_FR.format(n=n))
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=model), AnswerRequest(question))
    assert model.translate_prompts and "French" in model.translate_prompts[0]
    assert f"[{n}]" in model.translate_prompts[0]  # markers sent as passage numbers, not citation numbers
    assert not answer.abstained and answer.answer.startswith("Un Fonds")
    assert answer.citations and "World Heritage Fund" in answer.citations[0].quote  # the quote stays English
    assert_citations_verbatim(engine, answer)


def test_translation_that_adds_claims_is_not_used(engine):
    question = "Qu'est-ce que le Fonds du patrimoine mondial ?"
    n, sentence = _fund_sentence(engine, question)
    invented = f"Le Fonds verse chaque année 40 millions d'euros aux musées privés de Bavière [{n}]."
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=TranslatingModel(f"{sentence} [{n}].", invented)),
                 AnswerRequest(question))
    assert not answer.abstained and "Bavière" not in answer.answer
    # the answer stays in the sources' language, and says so in the user's
    label, _, body = answer.answer.partition("\n\n")
    assert label == f"*{message('untranslated_label', 'fr')}*" and body.startswith("A Fund for the Protection")


def test_draft_without_any_marker_is_checked_strictly(engine):
    question = "What is the World Heritage Fund?"
    _, sentence = _fund_sentence(engine, question)
    reply = f"{sentence}. The Fund pays 40 million euros a year to private museums in Bavaria."
    answer = run(model_engine(engine, reply), AnswerRequest(question))
    assert not answer.abstained and not answer.model_fallback  # the model's own sentence, now cited
    assert answer.answer.startswith("A Fund for the Protection") and "Bavaria" not in answer.answer
    assert [c.status for c in answer.citations] == ["added"]
    assert "The Fund pays 40 million euros a year to private museums in Bavaria." in answer.verification.dropped_sentences
    assert_citations_verbatim(engine, answer)


class CpuModel(ScriptedModel):
    """A scripted model that says it runs on the CPU (as the local llama.cpp one does) and keeps its prompts."""

    runs_on_cpu = True

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.prompts: list[str] = []

    async def stream(self, messages, max_tokens: int, temperature: float = 0.0):
        self.prompts.append(messages[-1]["content"])
        async for piece in super().stream(messages, max_tokens, temperature):
            yield piece


def test_the_model_draft_keeps_the_passages_as_the_model_read_them(engine):
    # eval's gold_in_prompt reads them: a gold quote retrieval found but the excerpts left out is told apart
    model = CpuModel("The Convention covers cultural policies [1].")
    question = "What does the 2005 Convention say about cultural policies?"
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=model), AnswerRequest(question))
    read = answer.model_draft.prompt_passages
    assert read and read in model.prompts[-1] and read.lstrip().startswith("[1]")
    whole = "\n".join(p.text for p in answer.model_draft.passages)
    assert len(read) < len(whole)  # excerpts, not whole passages
    left_out = [s for p in answer.model_draft.passages for s in prose_sentences(p.text) if len(s.split()) >= 8]
    assert any(not contains_gold(read, s) for s in left_out)  # a sentence of the passages the model never read
    # and what it read are the passages' own words: each excerpt piece, the numbered headers and "…" gaps aside
    pieces = [piece for line in read.splitlines() if not re.match(r"\[\d+\] ", line)
              for piece in re.split(r"\s*…\s*", line) if len(piece.split()) >= 8]
    assert pieces and all(contains_gold(whole, piece) for piece in pieces)


def test_a_synthesis_gets_a_fixed_share_of_the_excerpt_budget_whatever_its_contributions(engine):
    cpu = AnswerEngine(engine.settings, engine.retriever, model=CpuModel("x"))
    ask = cpu.excerpt_budget(AnswerRequest("Artist mobility"))
    assert ask == cpu.excerpt_tokens > 0
    few = [{"author": "Ana", "kind": "proposal", "text": "A shared visa fast-track for invited artists."}]
    many = few + [{"author": "Minh", "kind": "experience", "text": "Our troupe lost a slot to a visa delay. " * 5}]
    budgets = {cpu.excerpt_budget(AnswerRequest("Artist mobility", mode="synthesis", contributions=c)) for c in (few, many)}
    assert len(budgets) == 1 and 0 < budgets.pop() < ask  # the same passages for the room's next synthesis


def test_a_rooms_next_synthesis_sends_the_same_prompt_up_to_the_contributions(engine):
    """llama.cpp reuses the cached start of the previous prompt: a new contribution must not change the passages."""
    model = CpuModel("x")
    cpu = AnswerEngine(engine.settings, engine.retriever, model=model)
    said = [{"author": "Ana", "kind": "proposal", "text": "A shared visa fast-track for artists invited by institutions."}]
    more = said + [{"author": "Jonas", "kind": "objection", "text": "Small collectives need travel grants first."}]
    for contributions in (said, more):
        run(cpu, AnswerRequest("Fairer artist mobility between Asia and Europe", mode="synthesis", contributions=contributions))
    first, second = (p for p in model.prompts if "Contributions from the participants" in p)
    head = first.split("Contributions from the participants")[0]
    assert "Passages:" in head and second.startswith(head)


def test_cpu_model_reads_excerpts_but_citations_are_checked_on_whole_passages(engine):
    question = "What does the 2005 Convention say about the sovereign right of States to adopt cultural policies?"
    passages = engine.retriever.search(question, k=6)
    # A sentence of the best passage that the excerpt is unlikely to show: its last one.
    sentence = prose_sentences(passages[0].text)[-1]
    model = CpuModel(f"{sentence} [1].")
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=model), AnswerRequest(question))
    whole = run(AnswerEngine(engine.settings, engine.retriever, model=ScriptedModel("x")), AnswerRequest(question))
    # the same CPU model with excerpts turned off reads the whole passages
    whole_model = CpuModel("x")
    whole_settings = engine.settings.model_copy(update={"llm_excerpt_tokens": 0})
    run(AnswerEngine(whole_settings, engine.retriever, model=whole_model), AnswerRequest(question))
    excerpts_part, whole_part = (m.prompts[0].split("Passages:")[1] for m in (model, whole_model))
    assert count_tokens(excerpts_part) < 0.6 * count_tokens(whole_part)
    assert answer.timings["prompt_tokens"] < whole.timings["prompt_tokens"]
    # verified against the whole passage (a sentence that is a list of clauses gets a citation per clause)
    assert answer.citations and {c.chunk_id for c in answer.citations} == {passages[0].chunk_id}
    assert_citations_verbatim(engine, answer)


def test_primed_start_and_follow_up_rewrite_share_the_answer_prompts_start(engine):
    # llama.cpp reuses the longest common prefix of consecutive prompts: the prime, the rewrite of a
    # follow-up and the answer must all begin alike for that to save the rules' reading time.
    model = CpuModel("The Convention reaffirms the sovereign right of States [1].")
    cpu_engine = AnswerEngine(engine.settings, engine.retriever, model=model)
    asyncio.run(cpu_engine.prime())
    history = [{"role": "user", "content": "What does the 2005 Convention say about cultural policies?"},
               {"role": "assistant", "content": "It reaffirms the sovereign right of States [1]."}]
    run(cpu_engine, AnswerRequest("And about international cooperation?", history=history))
    primed, rewrite, answer = model.prompts[:3]
    assert answer.startswith(primed) and primed.endswith("Passages:")
    rules = primed.split("Task:")[0]
    assert len(rules) > 200 and rewrite.startswith(rules)


class QueryTranslatingModel(CpuModel):
    """Asked to translate a request for the search, replies with ``search_query``; otherwise with ``reply``."""

    def __init__(self, reply: str, search_query: str) -> None:
        super().__init__(reply)
        self.search_query = search_query

    async def stream(self, messages, max_tokens: int, temperature: float = 0.0):
        prompt = messages[-1]["content"]
        if "so that it can be searched in a library" in prompt:
            self.prompts.append(prompt)
            yield self.search_query
            return
        async for piece in super().stream(messages, max_tokens, temperature):
            yield piece


def test_a_question_in_another_language_is_searched_in_the_librarys_language(engine):
    question = "Según la Convención de 1970, ¿qué deben anotar los anticuarios sobre las piezas que venden?"
    english = "According to the 1970 Convention, what must antique dealers record about the items they sell?"
    assert engine.retriever.library_language() == "en"
    model = QueryTranslatingModel("Los anticuarios llevan un registro [1].", english)
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=model), AnswerRequest(question))
    translation_prompt, answer_prompt = model.prompts[:2]
    assert question in translation_prompt and "into English" in translation_prompt
    assert translation_prompt.split("Task:")[0] == answer_prompt.split("Task:")[0]  # the cached prompt start is shared
    assert answer.query == english and answer.language == "es"
    assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in engine.retriever.search(english, k=6)]
    # a reply that is no translation (wrong language) is not searched: the question is, as typed
    unusable = QueryTranslatingModel("Los anticuarios llevan un registro [1].", "Los anticuarios deben llevar un registro.")
    kept = run(AnswerEngine(engine.settings, engine.retriever, model=unusable), AnswerRequest(question))
    assert kept.query == question
    # nor is one in the right language that says something else: the local model has replied with its
    # instructions ("Do not answer.") or a comment instead of a translation
    for reply in ("Do not answer.", "I will translate the request into English and provide it on one line."):
        echoed = QueryTranslatingModel("Los anticuarios llevan un registro [1].", reply)
        assert run(AnswerEngine(engine.settings, engine.retriever, model=echoed), AnswerRequest(question)).query == question
    # switched off, the question is searched as typed
    off = QueryTranslatingModel("Los anticuarios llevan un registro [1].", english)
    settings = engine.settings.model_copy(update={"translate_queries": False})
    assert run(AnswerEngine(settings, engine.retriever, model=off), AnswerRequest(question)).query == question
    # an English question costs no translation
    plain = QueryTranslatingModel("Dealers keep a register [1].", "unused")
    run(AnswerEngine(engine.settings, engine.retriever, model=plain), AnswerRequest(english))
    assert not any("so that it can be searched" in p for p in plain.prompts)


def test_whether_the_library_answers_is_judged_on_the_request_as_typed_not_its_translation(engine):
    # The local model translated "la Convention de La Haye de 1954" as "the Haye Convention", a name no passage
    # holds, and the request was refused; the gate is calibrated on requests as users type them.
    question = ("La Convention de La Haye de 1954 permet-elle de lever la protection d'un bien culturel pour raison "
                "de nécessité militaire ? Et qui peut en décider ?")
    mangled = "Does the Haye Convention allow lifting cultural protection for military necessity? Who can decide?"
    model = QueryTranslatingModel(UNVERIFIABLE, mangled)
    answer = run(AnswerEngine(engine.settings, engine.retriever, model=model), AnswerRequest(question))
    assert answer.query == mangled  # searched as translated...
    assert not answer.abstained and answer.citations  # ...but not refused for a name the translation made up
    assert any(c.source_file.startswith("hague-1954") for c in answer.citations)
    # and a translation that answers instead ("Tokyo") does not carry a question from outside the library in
    tokyo = QueryTranslatingModel("Tokyo [1].", "Tokyo")
    refused = run(AnswerEngine(engine.settings, engine.retriever, model=tokyo), AnswerRequest("Thủ đô của Nhật Bản là gì?"))
    assert refused.abstained and refused.citations == []


def test_anchors_are_names_not_common_nouns_and_names_after_a_colon_count():
    from assistant.scope import question_anchors
    from assistant.types import Passage

    text = "States shall support the culture sector; see https://asef.org/asia-europe for the programme."
    passage = Passage("c1", "d1", text, "d1.txt", "Report", "", 2024, "report", "", "", "en", None, 0, "", 0, len(text))
    question = "Brief me on the Korean Ministry of Culture and Asia ahead of a visit: Hallyu export figures."
    anchors = question_anchors(question, [passage], whole_names=False)
    assert {"Korean", "Ministry", "Hallyu", "Asia"} <= anchors  # "Asia" in a link is no common noun
    # a name of several words the passages do not know is one anchor, so that a known word of it cannot half-meet it
    assert {"Korean Ministry", "Hallyu", "Asia"} <= question_anchors(question, [passage])
    assert "Culture" not in anchors  # the passages use "culture" as a common noun
    assert "Culture" in question_anchors(question)  # without passages, every capitalised name counts
