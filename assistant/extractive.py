"""The extractive backend: an answer made of the library's own best sentences, each cited.

Used when no language model is available (first start, air-gapped installs without the
model package) and for fast tests. It never paraphrases, so every sentence is a quote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from assistant.citations import Place, SupportScorer, content_words, passage_spans, place_of
from assistant.language import detect_language
from assistant.messages import message
from assistant.types import Passage

# Per mode, the sections of a structured answer: the message key of each heading (prompts/messages.json,
# in the user's language) and the words added to the request to find its sentences.
SECTION_QUERIES = {
    "brief": [
        ("section_context", "context background"),
        ("section_their_principles", "principles priorities values"),
        ("section_sensitivities", "challenges difficulties problems obstacles"),
        ("section_talking_points", "cooperation recommendations goals"),
    ],
    "draft": [
        ("section_principles", "principles values commitments"),
        ("section_challenges", "challenges difficulties problems obstacles"),
        ("section_steps", "recommendations measures actions"),
    ],
}
SECTION_QUERIES["synthesis"] = SECTION_QUERIES["draft"]
# e5 cosine (+ word-overlap bonus) below which a sentence is never used; calibrated on the dev
# set (answerable questions' best sentence ≥ 0.87, out-of-library ones ≤ 0.82; across languages
# the cosines run about 0.05 lower).
MIN_RELEVANCE = 0.84
MIN_RELEVANCE_CROSS_LINGUAL = 0.80
RELATIVE_WINDOW = 0.04  # only sentences within this distance of the best one above the threshold are used
# A question's answer sentences also weigh where their passage ranked: ``RANK_PRIOR / (1 + position)``
# is added to a sentence's relevance (+0.03 for the first passage, +0.015 for the second…). The
# ranking (dense and BM25, by passage and by sentence, facet by facet) knows more than one
# sentence's cosine, which across languages often prefers a generic clause of a lower passage.
# Not for briefs and drafts: each section looks for its own kind of content (measured in
# docs/evaluation.md: dev gold coverage 0.692 → 0.846; drafts lost quotes with it).
RANK_PRIOR = 0.03
MAX_SENTENCE_CHARS = 450
# Capitalised words inside a sentence of an English question: names ("…the GDP of France", "…in Prague in June").
NAME_RUN = re.compile(r"(?<=[a-z,;:] )([A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*)\b")
# A list item's bullet, number or footnote mark: the quote starts after it (it stays verbatim, and the
# answer's own "- " does not double it).
LEADING_MARK = re.compile(r"^(?:[-*•–]\s+|\(?\d{1,2}[.)]\s+|[¹²³⁴⁵⁶⁷⁸⁹⁰]+\s*)")


def name_words(question: str) -> frozenset[str]:
    """The content words of the names inside an English ``question`` (see ``NAME_RUN``); none in other languages,
    whose capitals are not a sign of names (German capitalises every noun)."""
    if detect_language(question) != "en":
        return frozenset()
    return content_words(" ".join(match.group(1) for match in NAME_RUN.finditer(question)))


def overlaps(place: Place, others: Sequence[Place]) -> bool:
    """Whether ``place`` shares any text with one of ``others``: a sentence and the pair of clauses that holds it, or
    the same sentence in two overlapping passages, are one quote."""
    doc, page, start, end = place
    return any(doc == o_doc and page == o_page and start < o_end and o_start < end
               for o_doc, o_page, o_start, o_end in others)


def rank_sentences(
    question: str, passages: Sequence[Passage], scorer: SupportScorer, limit: int, min_relevance: float = MIN_RELEVANCE,
    rank_prior: float = 0.0, usable: Callable[[str], bool] | None = None, taken: list[Place] | None = None,
    names: frozenset[str] | None = None,
) -> list[tuple[float, int, str]]:
    """(score, passage index, sentence) of the most relevant single sentences, best first.

    A sentence's relevance is its e5 cosine with the question plus 0.1 x the share of the question's content words it
    holds, names left out of that bonus (``names``, by default ``name_words(question)``): that a sentence names the
    question's country or city says it mentions it, not that it answers ("What is the GDP of France?" and a
    participants table's ".../France" row).
    It must reach ``min_relevance`` on its own (and pass ``usable``, if given); ``rank_prior / (1 + passage index)``
    is added to its score for the ordering (``passages`` best first). No two chosen quotes share
    text, nor does one share text with the places in ``taken`` (quoted already); the chosen ones are added to it.
    """
    taken = [] if taken is None else taken
    candidates = []
    for index, passage in enumerate(passages):
        for span in passage_spans(passage.text):
            if "\n" in span.text or not 40 <= len(span.text) <= MAX_SENTENCE_CHARS or len(span.words) < 5:
                continue
            if span.text.count(". ") + span.text.count("? ") > 0:  # a pair of sentences: use singles only
                continue
            if span.text.upper() == span.text:  # an all-caps heading line
                continue
            if span.text.endswith(("?", ":")):  # a question the document asks, a lead-in to a list: no answer
                continue
            if usable is not None and not usable(span.text):
                continue
            candidates.append((index, span))
    scorer.prepare([span for _, span in candidates])
    question_words = content_words(question)
    topic_words = question_words - (name_words(question) if names is None else names)
    scored = []
    for index, span in candidates:
        _overlap, cosine, _ = scorer.score(question, span)
        lexical = len(topic_words & span.words) / len(question_words) if question_words else 0.0
        relevance = cosine + 0.1 * lexical
        scored.append((relevance + rank_prior / (1 + index), relevance, index, LEADING_MARK.sub("", span.text),
                       place_of(passages[index], span)))
    eligible = sorted((item for item in scored if item[1] >= min_relevance), key=lambda item: item[0], reverse=True)
    chosen: list[tuple[float, int, str]] = []
    for score, _relevance, index, text, place in eligible:
        if score < eligible[0][0] - RELATIVE_WINDOW or any(text == c[2] for c in chosen) or overlaps(place, taken):
            continue
        chosen.append((score, index, text))
        taken.append(place)
        if len(chosen) == limit:
            break
    return chosen


def extractive_answer(
    question: str, passages: Sequence[Passage], mode: str, scorer: SupportScorer, cross_lingual: bool = False,
    language: str = "en", usable: Callable[[str], bool] | None = None,
) -> str:
    """Markdown answer of quoted sentences with ``[n]`` markers ("" when nothing is relevant); a brief's or
    draft's section headings are in ``language``, the quotes in their documents' own. A question's answer
    quotes only sentences that pass ``usable`` (a "how many" question: those that hold a figure)."""
    threshold = MIN_RELEVANCE_CROSS_LINGUAL if cross_lingual else MIN_RELEVANCE
    names = name_words(question)  # of the request itself: a section's hint words must not change its language
    if mode not in SECTION_QUERIES:
        best = rank_sentences(question, passages, scorer, limit=4, min_relevance=threshold, rank_prior=RANK_PRIOR,
                              usable=usable, names=names)
        return "\n".join(f"- {text} [{index + 1}]" for _, index, text in best)
    lines: list[str] = []
    quoted: list[Place] = []  # shared by the sections: a quote appears once in the whole answer
    for heading_key, hint in SECTION_QUERIES[mode]:
        picked = rank_sentences(f"{question} {hint}", passages, scorer, limit=2, min_relevance=threshold - 0.03,
                                taken=quoted, names=names)
        if not picked:
            continue
        lines.append(f"## {message(heading_key, language)}")
        lines.extend(f"- {text} [{index + 1}]" for _, index, text in picked)
    return "\n".join(lines)
