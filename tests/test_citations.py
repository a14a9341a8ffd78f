"""The citation verifier against crafted cases, with the real e5 embedder."""

from __future__ import annotations

import re

import pytest

from assistant.citations import (
    CitationVerifier,
    SupportScorer,
    _cosine,
    claim_names,
    name_keys,
    without_repeats,
    drop_prompt_echo,
    sentence_spans,
    split_sentences,
    states_something,
)
from assistant.embeddings import E5Embeddings
from assistant.types import Passage

FUND = (
    "### Article 15\n\n1. A Fund for the Protection of the World Cultural and Natural Heritage of Outstanding "
    "Universal Value, called “the World Heritage Fund”, is hereby established. 2. The Fund shall constitute a "
    "trust fund, in conformity with the provisions of the Financial Regulations of UNESCO."
)
REPORTS = (
    "Parties shall provide appropriate information in their reports to UNESCO every four years on measures taken "
    "to protect and promote the diversity of cultural expressions within their territory and at the international level."
)
LAB = (
    "Between 10-13 June 2024, 18 participants from the independent arts sector and the government sector across "
    "Asia and Europe gathered in Prague, Czech Republic for the second edition of ASEF LinkUp."
)


def passage(text: str, n: int, page: int | None = None) -> Passage:
    return Passage(
        chunk_id=f"c{n}", doc_id=f"d{n}", text=text, source_file=f"doc{n}.md", title=f"Doc {n}", publisher="UNESCO",
        year=2000 + n, doc_type="convention", country="", region="global", language="en", page=page, page_index=0,
        section="", char_start=100 * n, char_end=100 * n + len(text),
    )


@pytest.fixture(scope="module")
def verifier() -> CitationVerifier:
    return CitationVerifier(E5Embeddings())


@pytest.fixture()
def passages() -> list[Passage]:
    return [passage(FUND, 1), passage(REPORTS, 2), passage(LAB, 3, page=4)]


def test_correct_citation_is_kept_with_exact_quote(verifier, passages):
    text, citations, report = verifier.verify("Parties report to UNESCO every four years on their measures [2].", passages)
    assert report.kept == 1 and report.removed == 0 and report.retargeted == 0
    assert len(citations) == 1 and citations[0].chunk_id == "c2"
    assert citations[0].quote in REPORTS
    start = citations[0].quote_start - passages[1].char_start
    assert REPORTS[start : start + len(citations[0].quote)] == citations[0].quote
    assert text.endswith("[1].")


def test_wrong_passage_is_retargeted(verifier, passages):
    text, citations, report = verifier.verify("The second lab met in Prague with 18 participants [1].", passages)
    assert report.retargeted == 1 and report.kept == 0
    assert citations[0].chunk_id == "c3" and citations[0].page == 4
    assert "Prague" in citations[0].quote


def test_fabricated_claim_is_removed_and_sentence_dropped(verifier, passages):
    answer = "The World Heritage Fund was established [1]. The fund financed 312 museum roofs in Oslo [1]."
    text, citations, report = verifier.verify(answer, passages)
    assert report.removed == 1
    assert report.dropped_sentences == ["The fund financed 312 museum roofs in Oslo."]
    assert "Oslo" not in text and "World Heritage Fund" in text
    assert [c.chunk_id for c in citations] == ["c1"]


def test_a_marker_on_a_bare_list_number_certifies_nothing(verifier, passages):
    # A small model wrote a numbered list as "2 [3]." lines; "2" matched a photo caption "Row 2 (Left to right):"
    # by its number and a high e5 cosine between two near-empty strings, and was shown as a checked citation.
    caption = passage("Row 2 (Left to right):\n\nJerneja Rebernak (SI/UK), Kristine Milere (LV)", 4)
    text, citations, report = verifier.verify(
        "Parties report to UNESCO every four years [2].\n2 [4].\n3 [1].", [*passages, caption])
    assert [c.chunk_id for c in citations] == ["c2"]
    assert report.dropped_sentences == ["2.", "3."] and report.removed == 2
    assert "Row 2" not in text and text.startswith("Parties report to UNESCO")


def test_changed_number_is_not_supported(verifier, passages):
    text, citations, report = verifier.verify("Between 10-13 June 2024, 25 participants gathered in Prague [3].", passages)
    assert citations == [] and report.removed == 1
    assert "25 participants" not in text


def test_changed_number_in_words_is_not_supported(verifier, passages):
    # A 1.5B model wrote exactly this about the 2005 Convention's "every four years".
    text, citations, report = verifier.verify("Parties report to UNESCO every five years [2].", passages)
    assert citations == [] and report.removed == 1
    _text, same, _report = verifier.verify("Parties report to UNESCO every 4 years [2].", passages)
    assert [c.chunk_id for c in same] == ["c2"]  # the same number in digits agrees with the words


def test_the_documents_own_year_and_article_need_not_be_in_the_quote(verifier, passages):
    passages[1].year, passages[1].section = 2005, "Article 9 — Information sharing and transparency"
    passages[1].title = "Convention on the Protection and Promotion of the Diversity of Cultural Expressions"
    claim = "Under Article 9 of the 2005 Convention, a Party reports to UNESCO every four years [2]."
    text, citations, report = verifier.verify(claim, passages)
    assert report.kept == 1 and [c.chunk_id for c in citations] == ["c2"]
    # a year or article the cited passage is not from still has to be in the quote
    for wrong in ("Under Article 7 of the 2005 Convention, a Party reports to UNESCO every four years [2].",
                  "Under Article 9 of the 2003 Convention, a Party reports to UNESCO every four years [2]."):
        assert verifier.verify(wrong, passages)[1] == [], wrong


OPENING_2003 = (
    "The General Conference of the United Nations Educational, Scientific and Cultural Organization hereinafter "
    "referred to as UNESCO, meeting in Paris, from 29 September to 17 October 2003, at its 32nd session,"
)


def test_a_claim_about_a_name_the_passage_never_mentions_is_not_supported(verifier, passages):
    # a 1.5B model's brief opened with this, cited to the 2003 Convention's opening: "meeting" and "culture" were
    # half its content words, which the word-overlap test took for support
    opening = passage(OPENING_2003, 4)
    text, citations, report = verifier.verify("Vietnam's deputy minister of culture will be meeting on Tuesday [4].",
                                              [*passages, opening])
    assert citations == [] and report.removed == 1 and "Tuesday" not in text
    moved = verifier.verify("In June 2024, 18 participants from Asia and Europe gathered in Berlin [3].", passages)
    assert moved[1] == [] and "Berlin" not in moved[0]
    # the same claims about names the passages do hold stay cited (an acronym also by its initials: "UN")
    kept = verifier.verify("In June 2024, 18 participants from Asia and Europe gathered in Prague [3].", passages)[1]
    assert [c.chunk_id for c in kept] == ["c3"]
    own = verifier.verify("UNESCO's General Conference, a UN body, met in Paris for its 32nd session [4].", [*passages, opening])
    assert [c.chunk_id for c in own[1]] == ["c4"]
    # names are read in the passage's language only ("La Haye" is "The Hague"); a French claim is judged by e5
    french = "En juin 2024, 18 participants venus d'Asie et d'Europe se sont réunis à Prague, en République tchèque [3]."
    assert [c.chunk_id for c in verifier.verify(french, passages)[1]] == ["c3"]


def test_a_first_word_the_request_uses_as_a_name_is_read_as_one(passages):
    # a capitalised first word usually names nothing ("Cultural diversity widens…"), so "Vietnam has…" cited to
    # the 2003 Convention's opening passed; in a brief on Vietnam's minister, the request says it is a name
    opening = passage(OPENING_2003, 4)
    claim = "Vietnam has been meeting in Paris since 29 September 2003 [4]."
    request = "Brief me before our meeting with Vietnam's deputy minister of culture."
    assert [c.chunk_id for c in CitationVerifier(E5Embeddings()).verify(claim, [*passages, opening])[1]] == ["c4"]
    briefed = CitationVerifier(E5Embeddings(), request=request).verify(claim, [*passages, opening])
    assert briefed[1] == [] and briefed[2].removed == 1
    # a first word the request names and the passage holds stays cited; so does one the passage's place vouches for
    prague = "Prague hosted 18 participants from Asia and Europe in June 2024 [3]."
    asked = CitationVerifier(E5Embeddings(), request="What happened at the lab in Prague?").verify(prague, passages)
    assert [c.chunk_id for c in asked[1]] == ["c3"]
    placed = CitationVerifier(E5Embeddings(), places=["Vietnam"]).verify(claim, [*passages, opening])
    assert placed[1] == []


def test_names_anywhere_come_from_the_request_and_its_places():
    keys = name_keys("Before meeting our Vietnamese counterparts, what does the library say on Asian museums?")
    assert claim_names("Vietnam has faced rapid urban change.", keys) == {"Vietnam"}
    assert claim_names("Asia hosts many living heritage practices.", keys) == {"Asia"}
    assert claim_names("Cultural diversity widens the range of options.", keys) == frozenset()
    # German capitalises "Sie"; a title-case request line is a heading
    assert name_keys("Können Sie mir sagen, was die Bibliothek enthält?") == frozenset()
    assert name_keys("Briefing Note on Cultural Heritage Protection") == frozenset()
    assert claim_names("Korea funds residencies.", name_keys(names=["Korea"])) == {"Korea"}


def test_a_statement_said_again_is_dropped_once_said():
    draft = ("## Principles\n- Parties shall integrate culture in their development policies [1].\n"
             "- The Fund supports projects in developing countries [2].\n\n"
             "## Common ground\n- Parties shall integrate culture in their development policies at all levels [3].\n"
             "- The 2005 Convention sets out principles: equal dignity, solidarity and sustainable development [2].\n"
             "- Principle of equal dignity of and respect for all cultures [2].\n"
             "- The 1970 Convention asks States to set up national services.\n"
             "- The 1972 Convention asks States to set up national services.\n"
             "1. What should our ministry fund first?\n2. What should our ministry fund first?\n3. Who decides?")
    kept = without_repeats(draft)
    assert kept.count("integrate culture") == 1 and "at all levels" not in kept  # the same statement, a word longer
    assert "- Principle of equal dignity of and respect for all cultures [2]." in kept  # spells out a summary: new
    assert "1970 Convention" in kept and "1972 Convention" in kept  # another year is another statement
    assert kept.count("What should our ministry fund first?") == 1 and "3. Who decides?" in kept
    assert "## Common ground" in kept and "\n\n\n" not in kept and not re.search(r"^\s*(?:-|\d+\.)\s*$", kept, re.M)


def test_a_copy_that_cites_lends_its_marker_to_the_first_copy():
    draft = ("## Principles\n- Parties shall integrate culture in their development policies at all levels.\n\n"
             "## Talking points\n- [3] Parties shall integrate culture in their development policies at all levels.\n"
             "- The Fund supports projects in developing countries [2].\n"
             "- The Fund supports projects in developing countries [4].")
    kept = without_repeats(draft)
    assert "- Parties shall integrate culture in their development policies at all levels [3]." in kept
    assert kept.count("integrate culture") == 1
    # a first copy that cites keeps its own marker
    assert "developing countries [2]." in kept and "[4]" not in kept


ARTICLE_4 = (
    "The High Contracting Parties undertake to respect cultural property situated within their own territory as "
    "well as within the territory of other High Contracting Parties by refraining from any use of the property and "
    "its immediate surroundings or of the appliances in use for its protection for purposes which are likely to "
    "expose it to destruction or damage in the event of armed conflict; and by refraining from any act of "
    "hostility, directed against such property."
)
ARTICLE_8 = (
    "4. The guarding of cultural property mentioned in paragraph 1 above by armed custodians specially empowered to "
    "do so, or the presence, in the vicinity of such cultural property, of police forces normally responsible for "
    "the maintenance of public order shall not be deemed to be used for military purposes.\n\n"
    "5. If any cultural property mentioned in paragraph 1 of the present Article is situated near an important "
    "military objective as defined in the said paragraph, it may nevertheless be placed under special protection "
    "if the High Contracting Party asking for that protection undertakes, in the event of armed conflict, to make "
    "no use of the objective and particularly, in the case of a port, railway station or aerodrome, to divert all "
    "traffic therefrom."
)


def test_a_claim_copied_from_one_passage_is_cited_to_it_not_to_the_look_alike_it_numbers(verifier):
    claim = ("Countries are required to respect cultural property situated within their own territory as well as "
             "within the territory of other High Contracting Parties by refraining from any use of the property "
             "which is likely to expose it to destruction or damage [1].")
    look_alike, source = passage(ARTICLE_8, 1), passage(ARTICLE_4, 2)
    # the passage it numbers passes the check on its own: same convention, same legal words
    assert [c.chunk_id for c in verifier.verify(claim, [look_alike])[1]] == ["c1"]
    text, citations, report = verifier.verify(claim, [look_alike, source])
    assert [c.chunk_id for c in citations] == ["c2"] and report.retargeted == 1
    assert citations[0].quote.startswith("The High Contracting Parties undertake to respect cultural property")


def test_names_a_claim_relies_on():
    assert claim_names("Vietnam's deputy minister will meet the Korean ambassador in June [1].") == {"Vietnam", "Korean", "June"}
    # a list item's label is the model's heading, "NGOs" a kind of organisation, "IV" a number
    assert claim_names("- **Prevention and Early Detection**: NGOs advise the Committee under Chapter IV.") == {"Committee", "Chapter"}
    assert claim_names("Cultural diversity widens the range of options open to everyone [2].") == frozenset()
    # a heading in title case names nothing, even with a marker
    assert claim_names("A Joint Recommendation on Fairer Artist Mobility Between Asia and Europe [1]") == frozenset()
    assert claim_names("**Why International Cooperation and Solidarity are Needed to Build Viable Cultural Industries**:") == frozenset()
    # a recommendation names its addressees, which the passage that supports its content need not mention
    assert claim_names("Ministries in Asia and Europe should fund open calls for artists [1].") == frozenset()


def test_out_of_range_marker_never_survives(verifier, passages):
    text, citations, report = verifier.verify("Parties report every four years [7].", passages)
    assert all(c.chunk_id in {"c1", "c2", "c3"} for c in citations)
    assert "[7]" not in text


def test_cross_lingual_claim_is_supported_by_english_passage(verifier, passages):
    claim = "Les Parties fournissent tous les quatre ans à l'UNESCO des informations sur les mesures prises pour protéger la diversité des expressions culturelles [2]."
    text, citations, report = verifier.verify(claim, passages)
    assert report.kept == 1, report
    assert citations[0].quote in REPORTS


def test_markers_after_full_stop_stay_with_their_sentence():
    text = "First claim. [1] Second claim [2]. Third.\n- bullet one. [3]\n## Head\n"
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert pieces[0] == "First claim. [1] " and pieces[3] == "- bullet one. [3]\n"


def test_uncited_heading_lines_are_kept(verifier, passages):
    answer = "## Context\n- The World Heritage Fund is a trust fund [1]."
    text, citations, _ = verifier.verify(answer, passages)
    assert text.startswith("## Context") and citations[0].chunk_id == "c1"


def test_sentence_stated_from_a_passage_without_a_marker_gets_its_citation(verifier, passages):
    answer = "Parties report to UNESCO every four years on their measures. Let us discuss next steps together."
    text, citations, report = verifier.verify(answer, passages)
    assert report.added == 1 and [c.chunk_id for c in citations] == ["c2"] and citations[0].status == "added"
    assert "measures [1]." in text
    assert text.endswith("Let us discuss next steps together †.")  # no passage says it: kept, marked, counted
    assert report.uncited_sentences == 1


def test_an_uncited_claim_about_what_a_source_says_is_dropped_not_marked(verifier, passages):
    # No passage says any of the first three; the first two put words in a source's mouth, the third is the model's own
    # suggestion. Only the suggestion may stay, marked as not from the library.
    answer = ("The Convention acknowledges sensitivities over sites in disputed territories. "
              "According to the lab report, ministries fund artist residencies every year. "
              "Ministries should fund artist residencies every year. "
              "Parties report to UNESCO every four years on their measures [2].")
    text, citations, report = verifier.verify(answer, passages)
    assert "disputed territories" not in text and "According to" not in text
    assert "Ministries should fund artist residencies every year †." in text
    assert [c.chunk_id for c in citations] == ["c2"]
    assert len(report.dropped_sentences) == 2 and report.uncited_sentences == 1


def test_prompt_echo_is_dropped_but_the_requested_headings_stay():
    template = "Current text of the section \"{section}\":\n{current}\n## Their stated principles and priorities\n"
    draft = ("Current text of the section \"Rationale\":\n"
             "[3] How Do We Navigate Cultural Diplomacy? (2024), page 4:\n"
             "[4] How Do We Navigate Cultural Diplomacy? (2024):\n"
             "[5] same document as [3], Principles for cultural diplomacy:\n"
             "- same document as, When culture becomes the national language [4][5]\n"
             "UNESCO Universal Declaration on Cultural Diversity (2001), Annex II — Main lines of an action plan:\n"
             "- How evolving cultural diplomacy efforts foster long-term… (2025)\n"
             "## Their stated principles and priorities\n- Culture is a pillar of diplomacy [1].")
    assert drop_prompt_echo(draft, [template]) == "## Their stated principles and priorities\n- Culture is a pillar of diplomacy [1]."


def test_an_uncited_question_is_not_given_a_citation(verifier, passages):
    answer = "- **How often do Parties report to UNESCO on their measures?**\nParties report to UNESCO every four years."
    text, citations, report = verifier.verify(answer, passages, strict=True)
    assert "- **How often do Parties report to UNESCO on their measures?**" in text.splitlines()  # kept, uncited
    assert report.added == 1 and [c.chunk_id for c in citations] == ["c2"]  # only the statement is cited
    # a question the model cited stays too, without the citation (a question asserts nothing to support)
    text, citations, report = verifier.verify("How can ministries of defence train their staff to protect heritage? [3]", passages)
    assert text == "How can ministries of defence train their staff to protect heritage?" and citations == []


def test_a_loosely_related_uncited_sentence_is_not_given_a_citation(verifier, passages):
    # e5 finds it close enough to the Prague lab passage (cosine ~0.85, a third of its words shared), but the
    # passage does not say it; a citation the model did not make needs the passage's own words.
    text, citations, report = verifier.verify("The meeting will focus on cultural cooperation between Europe and Asia.", passages)
    assert citations == [] and report.added == 0 and report.uncited_sentences == 1
    text, citations, report = verifier.verify("Parties report to UNESCO every four years on their measures.", passages)
    assert report.added == 1 and [c.chunk_id for c in citations] == ["c2"]


def test_a_restated_instruction_is_dropped_but_a_restated_question_and_cited_sentences_stay():
    request = ("Draft a joint recommendation on fairer artist mobility between Asia and Europe, grounded in the "
               "library. Is cultural diversity one of the roots of development?")
    draft = ("Draft a joint recommendation on fairer artist mobility between Asia and Europe.\n"
             "- Artists from the Global South face visa barriers [1]. Draft a recommendation on fairer artist "
             "mobility between Asia and Europe, grounded in the library.\n"
             "## Fairer artist mobility between Asia and Europe\n"
             "Cultural diversity is one of the roots of development [2].\n"
             "Cultural diversity is one of the roots of development.\n"
             "Fairer artist mobility between Asia and Europe needs shared funding for travel and visas.")
    kept = drop_prompt_echo(draft, [], request).splitlines()
    assert kept == [
        "- Artists from the Global South face visa barriers [1].",
        "## Fairer artist mobility between Asia and Europe",  # a heading, not a statement
        "Cultural diversity is one of the roots of development [2].",
        "Cultural diversity is one of the roots of development.",  # restates a question: may answer it
        "Fairer artist mobility between Asia and Europe needs shared funding for travel and visas.",  # adds words
    ]
    assert drop_prompt_echo(draft, []) == draft  # without the request nothing is judged an echo


def test_sentences_embedded_at_indexing_are_scored_with_their_stored_vectors(default_retriever):
    # the extractive answer and the citation check score single sentences; most were embedded at indexing already
    from ingest.chunk import sentence_units

    passages = default_retriever.search("What does the 2005 Convention say about international cooperation?", 6)
    stored = default_retriever.library.stored_sentence_vectors({p.chunk_id: p.text for p in passages})
    units = [u for p in passages for u in sentence_units(p.text) if len(sentence_units(p.text)) > 1]
    assert units and set(stored) == set(units)
    embeddings = default_retriever.library.vectors.embeddings
    fresh = embeddings.embed_documents(units[:8])
    for unit, vector in zip(units[:8], fresh):  # each vector belongs to its own sentence, not a neighbour's
        assert _cosine(stored[unit], vector) > 0.999

    class Counting:
        def __init__(self) -> None:
            self.embedded: list[str] = []

        def embed_documents(self, texts):
            self.embedded += texts
            return embeddings.embed_documents(texts)

        def embed_query(self, text):
            return embeddings.embed_query(text)

    counting = Counting()
    scorer = SupportScorer(counting)
    scorer.seed(stored)
    spans = [s for p in passages for s in sentence_spans(p.text)]
    scorer.prepare(spans)
    assert not set(counting.embedded) & set(stored)  # only the sentences indexing did not embed on their own
    assert len(counting.embedded) < len({s.text for s in spans})
    unit_span = next(s for s in spans if s.text in stored)
    assert scorer.score("international cooperation", unit_span)[1] == pytest.approx(
        _cosine(embeddings.embed_query("international cooperation"), embeddings.embed_documents([unit_span.text])[0]), abs=1e-3)


def test_an_answer_states_something_only_with_a_cited_statement():
    assert states_something("Parties report every four years [1]. Who reads the reports?")
    assert not states_something("Who reads the reports [1]? And when [2]?")
    assert not states_something("Parties report every four years †.")
