"""Evaluation metrics that do not depend on how documents are chunked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OVERLAP_HIT = 0.6  # share of the gold quote's words that a passage must contain to count as a hit


def normalise(text: str) -> str:
    """Whitespace collapsed, markdown emphasis and link brackets removed, lower case."""
    text = re.sub(r"[*_`]|\]\(#\)|\\", "", text)
    return " ".join(text.replace("[", "").split()).lower()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", normalise(text))


def contains_gold(passage_text: str, quote: str) -> bool:
    """A hit: the passage contains the quote, or substantially overlaps it (long quotes cut by a chunk edge)."""
    if normalise(quote) in normalise(passage_text):
        return True
    quote_words = _words(quote)
    if len(quote_words) < 8:
        return False
    text = " " + " ".join(_words(passage_text)) + " "
    # longest run of the quote's words found contiguously in the passage
    best = 0
    for start in range(len(quote_words)):
        for end in range(len(quote_words), start + best, -1):
            if " " + " ".join(quote_words[start:end]) + " " in text:
                best = max(best, end - start)
                break
    return best / len(quote_words) >= OVERLAP_HIT


@dataclass
class Question:
    id: str
    mode: str
    language: str
    question: str
    answerable: bool
    gold: list[dict[str, str]]
    must_mention: list[str]


def load_questions(path: Path) -> list[Question]:
    questions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            data: dict[str, Any] = json.loads(line)
            questions.append(Question(
                id=data["id"], mode=data.get("mode", "ask"), language=data.get("language", "en"),
                question=data["question"], answerable=bool(data.get("answerable", True)),
                gold=list(data.get("gold", [])), must_mention=list(data.get("must_mention", [])),
            ))
    return questions


def gold_ranks(passages: Sequence[tuple[str, str]], gold: Iterable[dict[str, str]]) -> list[int | None]:
    """For each gold item, the 1-based rank of the first (source_file, text) passage that hits it."""
    ranks: list[int | None] = []
    for item in gold:
        rank = next(
            (i for i, (source, text) in enumerate(passages, start=1)
             if source == item["source"] and contains_gold(text, item["quote"])),
            None,
        )
        ranks.append(rank)
    return ranks


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def reciprocal_rank(ranks: Sequence[int | None]) -> float:
    found = [r for r in ranks if r is not None]
    return 1.0 / min(found) if found else 0.0


# --- answers: statements, citations, gold coverage ------------------------------------------
#
# Citation recall and precision follow ALCE (Gao et al. 2023, "Enabling Large Language Models
# to Generate Text with Citations"): a *statement* (a sentence of the answer) is supported when
# the evidence of its citations, taken together, supports it; a citation is *precise* when it
# supports its statement on its own, or when the statement is supported jointly and loses that
# support without it. ALCE decides "supports" with an NLI model (TRUE, T5-11B); offline we
# approximate it with the product's own support test, ``assistant.citations.SupportScorer``
# (content-word overlap, e5 similarity, numbers must match). Its agreement with hand labels is
# measured by ``python -m eval.calibrate_support`` (see docs/evaluation.md).

MIN_STATEMENT_WORDS = 3   # content words a sentence needs to count as a statement
QUOTE_CHARS = 600         # evidence up to this long is one span (a quote); longer is a passage, cut into sentences
QUOTE_OVERLAP = 0.5       # share of the shorter text's words in the longest common run for two quotes to overlap
LIST_PREFIX = re.compile(r"^\s*(?:(?:[-*•]|\d+[.)])\s+)+")
EMPHASIS = re.compile(r"\*\*|__|`")
# Spelled-out numbers (English, French, German; "one"/"un"/"ein" and French "neuf" (also "new") left out).
# The product's verifier compares digits only; the evaluation also catches "every five years" for
# "every four years". Ordinals and larger numbers are not covered.
NUMBER_WORDS = {
    **dict.fromkeys(("two", "deux", "zwei"), "2"), **dict.fromkeys(("three", "trois", "drei"), "3"),
    **dict.fromkeys(("four", "quatre", "vier"), "4"), **dict.fromkeys(("five", "cinq", "fünf"), "5"),
    **dict.fromkeys(("six", "sechs"), "6"), **dict.fromkeys(("seven", "sept", "sieben"), "7"),
    **dict.fromkeys(("eight", "huit", "acht"), "8"), **dict.fromkeys(("nine", "neun"), "9"),
    **dict.fromkeys(("ten", "dix", "zehn"), "10"), **dict.fromkeys(("eleven", "onze", "elf"), "11"),
    **dict.fromkeys(("twelve", "douze", "zwölf"), "12"), **dict.fromkeys(("twenty", "vingt", "zwanzig"), "20"),
}
NUMBER_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.I)


def claim_text(sentence: str) -> str:
    """A sentence of an answer as a claim: citation markers, list bullets and emphasis removed."""
    from assistant.citations import strip_markers

    text = LIST_PREFIX.sub("", strip_markers(sentence).strip())
    return EMPHASIS.sub("", text).strip()


def is_statement(sentence: str) -> bool:
    """Whether an answer sentence makes a claim: not a heading, not a label line, not a question, enough words."""
    from assistant.citations import content_words, is_question

    stripped = sentence.strip()
    if not stripped or stripped.startswith("#"):
        return False
    if is_question(stripped):
        return False  # a talking point or open question asserts nothing (ALCE scores claims)
    if re.fullmatch(r"\*[^*].*\*|\*\*.*\*\*|_.*_", stripped):  # "*Extractive answer…*", "**Context**"
        return False
    return len(content_words(claim_text(stripped))) >= MIN_STATEMENT_WORDS


def answer_statements(answer: str) -> list[tuple[str, list[int]]]:
    """(claim, cited marker numbers) for each statement of ``answer``, in order."""
    from assistant.citations import cited_numbers, split_sentences

    found = []
    for sentence in split_sentences(answer):
        if is_statement(sentence):
            found.append((claim_text(sentence), list(dict.fromkeys(cited_numbers(sentence)))))
    return found


def _longest_common_run(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def quotes_overlap(quote: str, gold: str) -> bool:
    """Two quotes overlap: one contains the other, or they share a run of words covering at least
    ``QUOTE_OVERLAP`` of the shorter one (and at least 5 words)."""
    a, b = normalise(quote), normalise(gold)
    if not a or not b:
        return False
    if a in b or b in a:
        return min(len(_words(quote)), len(_words(gold))) >= 3
    wa, wb = _words(quote), _words(gold)
    run = _longest_common_run(wa, wb)
    return run >= 5 and run >= QUOTE_OVERLAP * min(len(wa), len(wb))


@dataclass
class Evidence:
    """What a citation marker points to: a verified quote (policylab) and/or the cited chunk."""

    source_file: str
    chunk_text: str
    quote: str | None = None
    context: str = ""  # the passage's identity (title, year, section), as ALCE's passages carry their title

    @property
    def text(self) -> str:
        return self.quote if self.quote else self.chunk_text


def gold_covered(gold: Iterable[dict[str, str]], cited: Sequence[Evidence]) -> list[bool]:
    """For each gold item: does a citation point to it (its quote overlaps the gold quote, or the
    cited chunk contains it)?"""
    covered = []
    for item in gold:
        covered.append(any(
            e.source_file == item["source"]
            and ((e.quote is not None and quotes_overlap(e.quote, item["quote"])) or contains_gold(e.chunk_text, item["quote"]))
            for e in cited
        ))
    return covered


def must_mention_hits(answer: str, terms: Iterable[str]) -> list[bool]:
    """Case-insensitive, whitespace-normalised containment of each term in the answer."""
    text = " ".join(answer.lower().split())
    return [" ".join(term.lower().split()) in text for term in terms]


@dataclass
class StatementResult:
    claim: str
    cited: list[int]
    supported: bool
    precise: list[bool]  # one per cited marker

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "cited": self.cited, "supported": self.supported, "precise": self.precise}


def spelled_numbers(text: str) -> set[str]:
    """Digits and spelled-out numbers of ``text``, as digit strings."""
    from assistant.citations import numbers_in

    return set(numbers_in(text)) | {NUMBER_WORDS[w.lower()] for w in NUMBER_WORD.findall(text)}


class SupportJudge:
    """Does a set of evidence texts support a claim? ``SupportScorer`` applied to evidence spans.

    On top of the scorer's test, every number of the claim, digits or spelled out (see
    ``NUMBER_WORDS``), must appear in the supporting span, so the judge is a little stricter than
    the product's verifier.

    Evidence up to ``QUOTE_CHARS`` long is one span; a longer one (a whole retrieved chunk) is cut
    into its sentences and pairs of adjacent sentences, as the product's verifier does. Several
    evidence texts support a claim *together* when the concatenation of each one's best span
    supports it.
    """

    def __init__(self, embeddings: Any | None) -> None:
        from assistant.citations import SupportScorer

        self.scorer = SupportScorer(embeddings)

    def _spans(self, text: str) -> list[Any]:
        from assistant.citations import passage_spans, span_at

        if len(text) <= QUOTE_CHARS:
            stripped = text.strip()
            return [span_at(stripped, 0, len(stripped))] if stripped else []
        return passage_spans(text)

    @staticmethod
    def _numbers_ok(claim: str, evidence: str) -> bool:
        return spelled_numbers(claim) <= spelled_numbers(evidence)

    @staticmethod
    def _names_ok(claim: str, evidence: str, names_anywhere: frozenset[str] = frozenset()) -> bool:
        """The product's names rule (``assistant.citations.names_unsupported``): evidence in the claim's language that
        never mentions a name the claim relies on does not support it ("Korea's cultural diplomacy…" by a sentence
        on Vietnam's); ``names_anywhere`` (``citations.name_keys`` of the request) makes a first word a name too."""
        from assistant.citations import claim_names, names_unsupported
        from assistant.language import detect_language

        if not claim_names(claim, names_anywhere):  # most claims name nothing: no language to detect
            return True
        return not names_unsupported(claim, detect_language(claim), evidence, detect_language(evidence), names_anywhere)

    def _best(
        self, claim: str, text: str, context: str = "", passage: str = "", names_anywhere: frozenset[str] = frozenset(),
    ) -> tuple[bool, float, Any]:
        """(supported by one span of ``text``, best combined score, best span).

        Numbers in ``context`` (the passage's title, year, section) count as present, as for the verifier; names
        are looked for in the whole cited ``passage`` (``text`` if not given) and ``context``, as the verifier does.
        """
        from assistant.citations import numbers_in

        spans = self._spans(text)
        self.scorer.prepare(spans)
        context_numbers = numbers_in(context)
        best_score, best_span, ok = -1.0, None, False
        for span in spans:
            overlap, cosine, numbers_ok = self.scorer.score(claim, span, context_numbers)
            score = self.scorer.combined(overlap, cosine)
            ok = ok or (self.scorer.supports(overlap, cosine, numbers_ok) and self._numbers_ok(claim, f"{span.text} {context}"))
            if score > best_score:
                best_score, best_span = score, span
        return ok and self._names_ok(claim, f"{passage or text} {context}", names_anywhere), best_score, best_span

    def supported(
        self, claim: str, evidence: Sequence[str], contexts: Sequence[str] = (), passages: Sequence[str] = (),
        names_anywhere: frozenset[str] = frozenset(),
    ) -> bool:
        """Whether ``evidence`` (with its ``contexts``: title, year, section; and the whole cited ``passages``, where
        the evidence is a quote of one) supports ``claim`` (``names_anywhere``: see ``_names_ok``).

        A claim without a content word ("3", a list number left with its marker) supports nothing, as in the
        product's verifier: e5 scores near-empty strings close, and a number alone matches any span holding it.
        """
        from assistant.citations import content_words, numbers_in, span_at

        if not content_words(claim):
            return False
        padded_contexts = list(contexts) + [""] * len(evidence)
        padded_passages = list(passages) + [""] * len(evidence)
        triples = [(e, c, p) for e, c, p in zip(evidence, padded_contexts, padded_passages) if e and e.strip()]
        if not triples:
            return False
        context = " ".join(c for _, c, _ in triples)
        best_spans = []
        for text, own_context, passage in triples:
            ok, _score, span = self._best(claim, text, own_context, passage, names_anywhere)
            if ok:
                return True
            if span is not None:
                best_spans.append(span.text)
        if len(best_spans) < 2:
            return False
        joint = " ".join(best_spans)
        span = span_at(joint, 0, len(joint))
        self.scorer.prepare([span])
        whole = " ".join(p or e for e, _, p in triples)
        return (self.scorer.supports(*self.scorer.score(claim, span, numbers_in(context)))
                and self._numbers_ok(claim, f"{joint} {context}")
                and self._names_ok(claim, f"{whole} {context}", names_anywhere))

    def statement(
        self, claim: str, cited: Sequence[int], evidence: dict[int, str], contexts: dict[int, str] | None = None,
        passages: dict[int, str] | None = None, names_anywhere: frozenset[str] = frozenset(),
    ) -> StatementResult:
        """ALCE's support of one statement and precision of each of its citations."""
        contexts = contexts or {}
        passages = passages or {}
        texts = {n: evidence.get(n, "") for n in cited}

        def supported_by(numbers: Sequence[int]) -> bool:
            return self.supported(claim, [texts[m] for m in numbers], [contexts.get(m, "") for m in numbers],
                                  [passages.get(m, "") for m in numbers], names_anywhere)

        joint = supported_by(list(texts))
        precise = []
        for n in cited:
            if not joint:
                precise.append(False)
            elif supported_by([n]):
                precise.append(True)
            else:  # needed: the others alone no longer support the statement
                precise.append(not supported_by([m for m in texts if m != n]))
        return StatementResult(claim, list(cited), joint, precise)

    def answer(
        self, answer: str, evidence: dict[int, str], contexts: dict[int, str] | None = None,
        passages: dict[int, str] | None = None, request: str = "",
    ) -> list[StatementResult]:
        """Each statement of ``answer`` judged; the names ``request`` uses count as names even as a first word, as in
        the product's verifier (``citations.name_keys``)."""
        from assistant.citations import name_keys

        names_anywhere = name_keys(request)
        return [self.statement(claim, cited, evidence, contexts, passages, names_anywhere)
                for claim, cited in answer_statements(answer)]


def citation_recall(statements: Sequence[StatementResult]) -> float | None:
    """Share of statements supported by their citations (uncited statements count as unsupported)."""
    return sum(s.supported for s in statements) / len(statements) if statements else None


def citation_precision(statements: Sequence[StatementResult]) -> float | None:
    """Share of citations that are precise; None when the answer cites nothing."""
    flags = [p for s in statements for p in s.precise]
    return sum(flags) / len(flags) if flags else None


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)
