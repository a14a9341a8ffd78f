"""How the extractive backend picks its sentences, with a scorer whose cosines are set by hand."""

from __future__ import annotations

from assistant.citations import Span
from assistant.extractive import RANK_PRIOR, extractive_answer, rank_sentences
from assistant.types import Passage

TOP = "Developed countries shall grant preferential treatment to artists from developing countries."
LOWER = "This Convention shall be open to accession by all States not Members of the organisation."
OFF_TOPIC = "The Fund shall constitute a trust fund under the financial regulations of the organisation."


class FixedScorer:
    """Cosines per sentence, as the e5 scorer would return them."""

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = cosines

    def prepare(self, spans: list[Span]) -> None:
        pass

    def score(self, claim: str, span: Span, context_numbers: frozenset[str] = frozenset()) -> tuple[float, float, bool]:
        return 0.0, self.cosines[span.text], True


def passage(text: str, n: int) -> Passage:
    return Passage(
        chunk_id=f"c{n}", doc_id=f"d{n}", text=text, source_file=f"doc{n}.md", title=f"Doc {n}", publisher="UNESCO",
        year=2005, doc_type="convention", country="", region="global", language="en", page=None, page_index=0,
        section="", char_start=0, char_end=len(text),
    )


PASSAGES = [passage(TOP, 1), passage(OFF_TOPIC, 2), passage(LOWER, 3)]
# Across languages the cosine of a generic clause of a lower passage can beat the answer's by a little.
SCORER = FixedScorer({TOP: 0.815, LOWER: 0.83, OFF_TOPIC: 0.70})
QUESTION = "¿Qué dice la Convención sobre el trato preferente?"


def test_a_question_prefers_sentences_of_the_passages_ranked_first():
    without = rank_sentences(QUESTION, PASSAGES, SCORER, limit=4, min_relevance=0.80)
    assert [index for _, index, _ in without] == [2, 0]
    with_prior = rank_sentences(QUESTION, PASSAGES, SCORER, limit=4, min_relevance=0.80, rank_prior=RANK_PRIOR)
    assert [index for _, index, _ in with_prior] == [0, 2]
    assert extractive_answer(QUESTION, PASSAGES, "ask", SCORER, cross_lingual=True).startswith(f"- {TOP} [1]")


def test_a_boosted_irrelevant_sentence_neither_gets_in_nor_shuts_out_a_relevant_one():
    chosen = rank_sentences(QUESTION, [passage(OFF_TOPIC, 1), passage(TOP, 2)], SCORER, limit=4, min_relevance=0.80,
                            rank_prior=0.5)
    assert [text for _, _, text in chosen] == [TOP]


def test_a_drafts_headings_are_in_the_users_language_and_its_quotes_in_the_documents():
    draft = extractive_answer("Rédigez une recommandation sur le traitement préférentiel.", PASSAGES, "draft", SCORER,
                              cross_lingual=True, language="fr")
    headings = [line for line in draft.splitlines() if line.startswith("## ")]
    assert headings and "## Principes sur lesquels elle s'appuie" in headings, draft
    assert not any("Principles it draws on" in line for line in headings)
    assert f"- {TOP} [1]" in draft.splitlines()
    # English stays the default
    assert "## Principles it draws on" in extractive_answer("Draft it.", PASSAGES, "draft", SCORER, cross_lingual=True)


ASKED = "How can capacity building and mobility between Asia and Europe be more equal?"
LEAD_IN = "The group offers the following guiding principles for Asia-Europe cultural cooperation:"
ITEM = "Contributing to addressing the imbalances in travel opportunities for artists of all regions."


def test_questions_and_list_lead_ins_are_never_quoted_as_answers():
    # A question the document asks, or a sentence announcing a list, reads close to the user's question and answers
    # nothing; they score highest here and must still be left out.
    text = f"{ASKED}\n{LEAD_IN}\n{TOP}"
    scorer = FixedScorer({ASKED: 0.95, LEAD_IN: 0.93, TOP: 0.87})
    chosen = rank_sentences("How can artist mobility be fairer?", [passage(text, 1)], scorer, limit=4, min_relevance=0.84)
    assert [sentence for _, _, sentence in chosen] == [TOP]


def test_a_list_items_bullet_or_footnote_mark_is_not_part_of_the_quote():
    for mark in ("- ", "• ", "2. ", "¹ "):
        item = f"{mark}{ITEM}"
        # (a numbered item's "2." already ends a sentence of its own when the passage is split)
        answer = extractive_answer("What travel imbalances?", [passage(f"Challenges\n{item}", 1)], "ask",
                                   FixedScorer({item: 0.9, ITEM: 0.9}))
        assert answer == f"- {ITEM} [1]", (mark, answer)


CLAUSES = [
    "Recognizing that artists from developing countries face barriers to mobility;",
    "Considering that preferential treatment can open markets to their work;",
    "Being determined to take steps to support them.",
]


class ScoredByWords(FixedScorer):
    """A span scores by how many of CLAUSES it holds, so the pairs of clauses score highest."""

    def score(self, claim: str, span: Span, context_numbers: frozenset[str] = frozenset()) -> tuple[float, float, bool]:
        return 0.0, 0.85 + 0.005 * sum(clause in span.text for clause in CLAUSES), True


def test_no_two_quotes_share_text_within_a_passage_across_overlapping_passages_or_across_sections():
    text = " ".join(CLAUSES)
    first = passage(text, 1)
    # the next passage overlaps the first by its last two clauses, as chunks with an overlap do
    second_start = text.index(CLAUSES[1])
    second = passage(text[second_start:] + " The Parties shall report every four years on the measures taken.", 1)
    second.chunk_id, second.char_start = "c1b", second_start
    second.char_end = second_start + len(second.text)

    def places(chosen):
        return [(text.index(quote.rstrip(";.")), text.index(quote.rstrip(";.")) + len(quote.rstrip(";.")))
                for _, _, quote in chosen if quote.rstrip(";.") in text]

    chosen = rank_sentences("Quoi ?", [first, second], ScoredByWords({}), limit=4,
                            min_relevance=0.84)
    spans = places(chosen)
    assert len(chosen) >= 2, chosen
    assert all(a_end <= b_start or b_end <= a_start
               for i, (a_start, a_end) in enumerate(spans) for b_start, b_end in spans[i + 1:]), chosen

    draft = extractive_answer("Draft a recommendation on preferential treatment.", [first, second], "draft",
                              ScoredByWords({}))
    quotes = [line[2:line.rindex(" [")] for line in draft.splitlines() if line.startswith("- ")]
    for clause in CLAUSES:
        assert sum(clause.rstrip(";.") in quote for quote in quotes) <= 1, (clause, draft)
