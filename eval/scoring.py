"""Per-question scores of one system's output, and their aggregation into the report's metrics.

Every metric is a fraction in 0..1 except latencies (seconds) and the optional judge's 1-5
ratings. A metric that does not apply to a system (citations for a retrieval-only system) or
that has no question to be computed on is left out of that system's metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.citations import strip_markers
from eval.metrics import (
    Evidence,
    Question,
    SupportJudge,
    citation_precision,
    citation_recall,
    gold_covered,
    gold_ranks,
    mean,
    must_mention_hits,
    percentile,
    recall_at,
    reciprocal_rank,
)

RECALL_KS = (1, 5, 10)
STAGES = ("sources_s", "first_token_s", "total_s")
FRACTION_METRICS = (
    "retrieval_recall@1", "retrieval_recall@5", "retrieval_recall@10", "mrr",
    "citation_recall", "citation_precision", "gold_coverage",
    "abstention_accuracy", "false_abstention_rate", "language_accuracy", "must_mention",
)
ANSWER_METRICS = FRACTION_METRICS[4:]


@dataclass
class SystemOutput:
    """What one system produced for one question."""

    ranking: list[tuple[str, str]]  # (source file, passage text), best first
    answer: str | None = None  # None: retrieval-only system
    abstained: bool = False
    evidence: dict[int, Evidence] = field(default_factory=dict)  # citation marker → what it points to
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def answer_language(claims: Sequence[str], answer: str) -> str:
    from assistant.citations import strip_markers
    from assistant.language import detect_language

    text = " ".join(claims) if claims else strip_markers(answer)
    return detect_language(text)


def score_question(question: Question, output: SystemOutput, judge: SupportJudge | None) -> dict[str, Any]:
    """The per-question record of one system (what report.json's "questions" lists)."""
    ranks = gold_ranks(output.ranking, question.gold)
    record: dict[str, Any] = {"ranks": ranks}
    if question.gold:
        for k in RECALL_KS:
            record[f"recall@{k}"] = recall_at(ranks, k)
        record["rr"] = reciprocal_rank(ranks)
    record["timings"] = {k: round(v, 4) for k, v in output.timings.items()}
    if output.error:
        record["error"] = output.error
    record.update(output.extra)
    if output.answer is None:
        return record
    record["answer"] = output.answer
    record["abstained"] = output.abstained
    record["citations"] = [
        {"n": n, "source_file": e.source_file, "quote": e.quote} if e.quote is not None
        else {"n": n, "source_file": e.source_file, "chunk": " ".join(e.chunk_text.split())[:300]}
        for n, e in sorted(output.evidence.items())
    ]
    if not output.abstained and judge is not None and output.answer:
        statements = judge.answer(output.answer, {n: e.text for n, e in output.evidence.items()},
                                  {n: e.context for n, e in output.evidence.items()},
                                  {n: e.chunk_text for n, e in output.evidence.items()}, question.question)
        record["statements"] = [s.to_dict() for s in statements]
        record["citation_recall"] = citation_recall(statements)
        record["citation_precision"] = citation_precision(statements)
        if any(ch.isalpha() for ch in strip_markers(output.answer)):  # "[1]" alone has no language
            record["language"] = answer_language([s.claim for s in statements], output.answer)
            record["language_ok"] = record["language"] == question.language
    cited = [] if output.abstained else list(output.evidence.values())
    if question.answerable:
        record["gold_covered"] = gold_covered(question.gold, cited)
        record["must_mention"] = dict(zip(question.must_mention, must_mention_hits(
            "" if output.abstained else output.answer, question.must_mention)))
    return record


def _fraction(hits: int, total: int) -> float | None:
    return hits / total if total else None


def aggregate(questions: Sequence[Question], records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """A system's metrics from its per-question records (see docs/evaluation.md for definitions)."""
    metrics: dict[str, float | None] = {}
    with_gold = [(q, r) for q, r in zip(questions, records) if q.answerable and q.gold]
    all_ranks = [rank for _, r in with_gold for rank in r["ranks"]]
    for k in RECALL_KS:
        metrics[f"retrieval_recall@{k}"] = recall_at(all_ranks, k) if all_ranks else None
    metrics["mrr"] = mean(r["rr"] for _, r in with_gold) if with_gold else None
    if all("answer" in r for r in records) and records:
        answered = [r for r in records if not r["abstained"] and r.get("answer")]
        metrics["citation_recall"] = mean(r.get("citation_recall") for r in answered)
        metrics["citation_precision"] = mean(r.get("citation_precision") for r in answered)
        covered = [c for q, r in with_gold for c in r["gold_covered"]]
        metrics["gold_coverage"] = _fraction(sum(covered), len(covered))
        read = [c for _, r in with_gold for c in r.get("gold_in_prompt", [])]
        metrics["gold_in_prompt"] = _fraction(sum(read), len(read))
        unanswerable = [(q, r) for q, r in zip(questions, records) if not q.answerable]
        metrics["abstention_accuracy"] = _fraction(
            sum(r["abstained"] and not r["citations"] for _, r in unanswerable), len(unanswerable))
        answerable = [r for q, r in zip(questions, records) if q.answerable]
        metrics["false_abstention_rate"] = _fraction(sum(r["abstained"] for r in answerable), len(answerable))
        # Answers the model did not write (its draft had nothing checkable; labelled quotes instead).
        metrics["model_fallback_rate"] = _fraction(sum(bool(r.get("model_fallback")) for r in answerable), len(answerable))
        languages = [r["language_ok"] for r in answered if "language_ok" in r]
        metrics["language_accuracy"] = _fraction(sum(languages), len(languages))
        terms = [hit for q, r in zip(questions, records) if q.answerable for hit in r["must_mention"].values()]
        metrics["must_mention"] = _fraction(sum(terms), len(terms))
        for key in ("judge_faithfulness", "judge_helpfulness"):
            metrics[key] = mean(r.get(key) for r in records)
    for stage in STAGES:
        values = [r["timings"][stage] for r in records if stage in r["timings"]]
        metrics[f"latency_{stage}_p50"] = percentile(values, 50)
    return {k: round(v, 4) for k, v in metrics.items() if v is not None}


def latency_by_mode(questions: Sequence[Question], records: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{mode: {stage: {n, p50, p95, mean, max}}} in seconds."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mode in dict.fromkeys(q.mode for q in questions):
        for stage in STAGES:
            values = [r["timings"][stage] for q, r in zip(questions, records) if q.mode == mode and stage in r["timings"]]
            if values:
                table.setdefault(mode, {})[stage] = {
                    "n": len(values), "p50": round(percentile(values, 50), 4), "p95": round(percentile(values, 95), 4),
                    "mean": round(sum(values) / len(values), 4), "max": round(max(values), 4),
                }
    return table
