"""Query-focused excerpts of the retrieved passages, so that a CPU model reads a short prompt.

A 2-core CPU reads a prompt at ~70 tokens/s: eight whole passages (~1,200 tokens) keep the
user waiting 15 s for the first word. Most of a passage is context the answer does not use, so
the prompt shows, of each passage, only its sentences closest to the question (BM25 among the
retrieved sentences; e5 cosine as well when the question is in another language), with the
sentence after a good one carried along, in their original order, with "…" where text was left
out. This is extractive context compression (cf. RECOMP, Xu et al. 2023); the citations are still
verified against the *whole* passage, so a claim resting on a sentence the excerpt left out is
re-targeted or dropped like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.citations import SupportScorer, Span, sentence_spans, span_at
from assistant.tokens import count_tokens, truncate_tokens
from assistant.types import CAPTION, Passage
from ingest.chunk import clause_bounds
from ingest.lexical import bm25_scores

LEXICAL_BONUS = 0.1  # weight of the (normalised) BM25 score added to the cosine
MAX_SENTENCE_TOKENS = 60  # a 600-token preamble "sentence" is cut, not shown whole
CONTINUATION = 0.6  # share of a sentence's score lent to the sentence after it
MIN_WORDS = 4  # content words of a sentence that can stand on its own
GAP = " … "
SAME_PASSAGE_DECAY = 0.8  # a passage's second sentence competes at 80 % of its score: the budget spreads over passages


@dataclass
class _Candidate:
    passage: int
    order: int
    start: int
    end: int
    text: str
    tokens: int
    score: float


def passage_excerpts(
    question: str, passages: Sequence[Passage], scorer: SupportScorer, budget_tokens: int, semantic: bool = True
) -> list[str | None]:
    """One excerpt per passage, within ``budget_tokens`` of sentences in all; None for a passage left out.

    The budget goes to the best sentences of all passages; a passage none of whose sentences made
    it is left out of the prompt.

    ``semantic`` False ranks sentences by BM25 alone (no embedding, so no delay before the prompt):
    enough when question and passages share a language; across languages only the embedding can
    tell which sentence answers. A passage without sentences (a table, a list of names) shows its
    opening tokens.
    """
    if not passages:
        return []
    spans = [_evidence_units(p) for p in passages]
    if semantic:
        scorer.prepare([s for group in spans for s in group])
    # BM25 over these sentences: words every article repeats ("States Parties") weigh little, a
    # rare word of the question ("certificate") much, and a long sentence is not favoured for its length.
    flat = [span for group in spans for span in group]
    lexical_scores = iter(_normalised(bm25_scores(question, [span.text for span in flat])))
    candidates: list[list[_Candidate]] = []
    for index, group in enumerate(spans):
        scored = []
        for order, span in enumerate(group):
            cosine = scorer.score(question, span)[1] if semantic else 0.0
            lexical = next(lexical_scores)
            if span.text.endswith((":", "?")) or len(span.words) < MIN_WORDS:
                lexical /= 2  # a lead-in ("The States Parties undertake:"), a question or "(b)" says little on its own
            text = truncate_tokens(span.text, MAX_SENTENCE_TOKENS)
            score = cosine + LEXICAL_BONUS * lexical if semantic else lexical
            scored.append(_Candidate(index, order, span.start, span.end, text, count_tokens(text), score))
        for previous, current in zip(scored, scored[1:]):  # the sentence after a good one often carries it on
            current.score = max(current.score, CONTINUATION * previous.score)
        candidates.append(scored)

    chosen: list[list[_Candidate]] = [[] for _ in passages]
    used = 0
    shown: set[str] = set()
    pool = [c for group in candidates for c in group]
    while pool:  # the best sentences of all passages while they fit, each further one of a passage worth less
        candidate = max(pool, key=lambda c: (c.score * SAME_PASSAGE_DECAY ** len(chosen[c.passage]), -c.passage))
        pool.remove(candidate)
        key = _normal(candidate.text)
        if key in shown or (used and used + candidate.tokens > budget_tokens):
            continue  # overlapping passages of one section share sentences: each is shown once
        chosen[candidate.passage].append(candidate)
        shown.add(key)
        used += candidate.tokens

    excerpts: list[str | None] = []
    for passage, picked, group in zip(passages, chosen, candidates):
        if not group:  # no sentence found (a table, a list of names): its opening lines
            excerpts.append(truncate_tokens(passage.text, MAX_SENTENCE_TOKENS))
            continue
        if not picked:  # over the budget: the passage is left out of the prompt
            excerpts.append(None)
            continue
        picked.sort(key=lambda c: c.order)
        pieces = [] if picked[0].order == 0 else ["…", " "]
        for previous, current in zip([None, *picked], picked):
            if previous is not None:
                between = passage.text[previous.end : current.start]
                whole = previous.text == passage.text[previous.start : previous.end]
                pieces.append(between if whole and not between.strip() else GAP)  # never a left-out line
            pieces.append(current.text)
        if picked[-1].order != len(group) - 1 or picked[-1].text != passage.text[picked[-1].start : picked[-1].end]:
            pieces.append(" …")
        excerpts.append("".join(pieces))
    return excerpts


def excerpt_units(text: str) -> list[Span]:
    """The sentences of a passage, an over-long one (a convention's one-sentence preamble) cut into its
    clauses, so that "Noting that the cultural heritage … is threatened" can be chosen without the
    "The General Conference …, meeting in Paris" that opens the same sentence."""
    units: list[Span] = []
    for span in sentence_spans(text):
        if count_tokens(span.text) <= MAX_SENTENCE_TOKENS:
            units.append(span)
            continue
        # the clauses, packed back into pieces of up to MAX_SENTENCE_TOKENS: a lone "to whom may be added," says nothing
        piece: tuple[int, int] | None = None
        for start, end in clause_bounds(span.text, MAX_SENTENCE_TOKENS):
            if piece and count_tokens(span.text[piece[0]:end]) <= MAX_SENTENCE_TOKENS:
                piece = (piece[0], end)
                continue
            if piece:
                units.append(span_at(text, span.start + piece[0], span.start + piece[1]))
            piece = (start, end)
        if piece:
            units.append(span_at(text, span.start + piece[0], span.start + piece[1]))
    return units


def _evidence_units(passage: Passage) -> list[Span]:
    """The passage's units that can be evidence: not a caption, nor a heading line inside the passage (its
    own section label repeated, or a line in capitals such as "INTERNATIONAL COOPERATION AND ASSISTANCE")."""
    headings = {_normal(part) for part in passage.section.split(" › ")}
    return [u for u in excerpt_units(passage.text)
            if not (CAPTION.match(u.text) or u.text.isupper() or _normal(u.text) in headings)]


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _normalised(scores: list[float]) -> list[float]:
    top = max(scores, default=0.0)
    return [s / top for s in scores] if top > 0 else [0.0] * len(scores)
