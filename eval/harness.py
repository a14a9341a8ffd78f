"""The evaluation harness behind ``policylab eval``: index a corpus, run every question through
policylab (and the baselines), score, and write the report.

    policylab eval --questions eval/questions/dev.jsonl --corpus knowledge --compare baseline --out reports/dev

The index lives in ``<out>/index`` (reused while the corpus is unchanged: ingest is
idempotent, and documents no longer in the corpus are removed); the naive baseline's Chroma
folder in ``<out>/.work/naive``. Metric definitions: docs/evaluation.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eval.metrics import Evidence, Question, SupportJudge, contains_gold, load_questions
from eval.scoring import SystemOutput, aggregate, latency_by_mode, score_question

log = logging.getLogger(__name__)

POLICYLAB = "policylab"
RANK_DEPTH = 10
COMPARE_CHOICES = {"baseline": ("baseline-naive", "bm25"), "naive": ("baseline-naive",), "baseline-naive": ("baseline-naive",),
                   "bm25": ("bm25",), "none": ()}

Progress = Callable[[str], None]


@dataclass
class EvalConfig:
    questions: Path
    corpus: Path
    out: Path
    compare: Sequence[str] = ()
    backend: str | None = None  # overrides POLICYLAB_LLM_BACKEND
    limit: int | None = None
    command: str = ""
    systems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        systems = [POLICYLAB]
        for item in self.compare:
            for name in item.split(","):
                name = name.strip().lower()
                if not name:
                    continue
                if name not in COMPARE_CHOICES:
                    raise ValueError(f"Unknown --compare value {name!r}; use one of: {', '.join(COMPARE_CHOICES)}.")
                systems += [s for s in COMPARE_CHOICES[name] if s not in systems]
        self.systems = systems


def eval_settings(config: EvalConfig) -> Any:
    """The user's settings with the data directory moved under ``<out>/index`` (embedded Chroma)."""
    from assistant.settings import get_settings

    base = get_settings()
    update: dict[str, Any] = {"data_dir": config.out / "index", "chroma_mode": "embedded",
                              "models_dir": base.models_path.resolve()}
    if config.backend:
        update["llm_backend"] = config.backend
    return base.model_copy(update=update)


def prepare_index(corpus: Path, settings: Any, progress: Progress) -> dict[str, Any]:
    """Ingest ``corpus`` into ``settings.data_dir``; drop documents no longer in it."""
    from ingest.library import Library
    from ingest.pipeline import ingest_paths

    started = time.perf_counter()
    progress(f"Indexing {corpus} into {settings.data_dir} (unchanged files are reused)…")
    results = ingest_paths([corpus], settings, lock_timeout=60)
    present = {r.source_file for r in results if r.status != "skipped"}
    library = Library.open(settings)
    stale = [d for d in library.documents() if d.source_file not in present]
    for doc in stale:
        library.remove(doc.doc_id)
    failed = [f"{r.source_file}: {r.reason}" for r in results if r.failed]
    for line in failed:
        progress(f"  ingest failed: {line}")
    docs = library.documents()
    info = {
        "documents": len(docs), "chunks": sum(d.chunks for d in docs),
        "indexed": sum(r.status in ("indexed", "replaced") for r in results),
        "unchanged": sum(r.status == "unchanged" for r in results), "removed": len(stale), "failed": failed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    progress(f"  {info['documents']} documents, {info['chunks']} chunks ({info['indexed']} indexed, "
             f"{info['unchanged']} unchanged) in {info['seconds']:.0f} s")
    if not docs:
        raise RuntimeError(f"Nothing could be indexed from {corpus}: check that it holds PDF, DOCX, TXT, MD or HTML files.")
    return info


async def run_policylab(engine: Any, question: Question) -> SystemOutput:
    """Retrieval (top 10, for the retrieval metrics) and the full answer for one question."""
    from assistant.answer import AnswerRequest
    from assistant.citations import passage_identity

    async def rank(query: str) -> list[tuple[str, str]]:
        ranked = await asyncio.to_thread(engine.retriever.search, query, RANK_DEPTH, None, None, None, question.mode)
        return [(p.source_file, p.text) for p in ranked]

    try:
        answer = await engine.answer(AnswerRequest(question.question, mode=question.mode))
    except Exception as exc:  # one failed question is recorded; the run goes on
        log.exception("policylab failed on %s", question.id)
        return SystemOutput(ranking=await rank(question.question), answer="", error=f"{exc.__class__.__name__}: {exc}")
    # ranked for the query the engine searched (the question translated into the library's language, if it was)
    ranking = await rank(answer.query)
    chunks = {p.chunk_id: p.text for p in answer.passages}
    evidence = {c.n: Evidence(c.source_file, chunks.get(c.chunk_id, c.quote), c.quote, context=passage_identity(c))
                for c in answer.citations}
    timings = {k: v for k, v in answer.timings.items() if k.endswith("_s")}
    best = max((p.dense_score or 0.0 for p in answer.passages), default=0.0)
    read = answer.model_draft.prompt_passages if answer.model_draft else None
    # of each gold quote, whether the model read it (its passage's excerpt in the prompt): where a quote was lost
    in_prompt = {"gold_in_prompt": [contains_gold(read, g["quote"]) for g in question.gold]} if read is not None else {}
    return SystemOutput(ranking=ranking, answer=answer.answer, abstained=answer.abstained, evidence=evidence,
                        timings=timings, extra={"best_dense_score": round(best, 4), "backend": answer.backend,
                               "model_fallback": answer.model_fallback, "model_declined": answer.model_declined,
                               # what the verifier did to the draft: kept / retargeted / added / removed, dropped sentences
                               "verification": answer.verification.to_dict(),
                               "citation_status": {c.n: c.status for c in answer.citations}, **in_prompt})


async def _run_all(config: EvalConfig, settings: Any, questions: list[Question], progress: Progress) -> dict[str, Any]:
    from assistant.answer import AnswerEngine
    from assistant.embeddings import make_embeddings
    from assistant.llm import select_model
    from assistant.retrieval import Retriever

    index_info = prepare_index(config.corpus, settings, progress)
    model = select_model(settings)
    engine = AnswerEngine(settings, Retriever(settings), model)
    systems: dict[str, Any] = {POLICYLAB: None}
    meta: dict[str, Any] = {"index": index_info, "backend": engine.backend}
    try:
        if "baseline-naive" in config.systems or "bm25" in config.systems:
            from eval.baselines.bm25 import BM25Baseline
            from eval.baselines.naive import NaiveBaseline

            naive = NaiveBaseline(settings, config.corpus, config.out / ".work" / "naive", model)
            progress("Building the naive baseline (1000/200 character chunks → Chroma)…")
            naive.build(lambda done, total: progress(f"  naive baseline: {done}/{total} chunks embedded") if done % 96 == 0 or done == total else None)
            progress(f"  {len(naive.chunks)} chunks ({'reused' if naive.reused else 'built'} in {naive.build_seconds:.0f} s)")
            meta["baseline-naive"] = {"chunks": len(naive.chunks), "reused": naive.reused,
                                      "seconds": round(naive.build_seconds, 2), "answering": naive.answering}
            if "baseline-naive" in config.systems:
                systems["baseline-naive"] = naive
            if "bm25" in config.systems:
                systems["bm25"] = BM25Baseline(naive.chunks)
        outputs: dict[str, list[SystemOutput]] = {name: [] for name in systems}
        for number, question in enumerate(questions, start=1):
            started = time.perf_counter()
            outputs[POLICYLAB].append(await run_policylab(engine, question))
            for name, system in systems.items():
                if system is not None:
                    try:
                        outputs[name].append(await system.run(question.question))
                    except Exception as exc:
                        log.exception("%s failed on %s", name, question.id)
                        outputs[name].append(SystemOutput(ranking=[], answer="", error=f"{exc.__class__.__name__}: {exc}"))
            progress(f"[{number}/{len(questions)}] {question.id} ({question.mode}, {question.language}) "
                     f"{time.perf_counter() - started:.1f} s")
    finally:
        close = getattr(model, "aclose", None)
        if close:
            await close()
    progress("Scoring…")
    judge = SupportJudge(make_embeddings(settings))
    return {"outputs": outputs, "meta": meta, "support": judge}


def _rate_with_judge(questions: list[Question], outputs: dict[str, list[SystemOutput]],
                     records: dict[str, list[dict[str, Any]]], progress: Progress) -> dict[str, Any]:
    from eval.judge import Judge

    judge = Judge.from_env()
    if judge is None:
        return {"status": "skipped (POLICYLAB_JUDGE_BASE_URL not set)"}
    progress(f"Rating answers with the judge at {judge.base_url}…")
    rated = 0
    for name, runs in outputs.items():
        for question, run, record in zip(questions, runs, records[name]):
            if run.answer is None or not run.answer:
                continue
            rating = judge.rate(question.question, run.answer, [e.text for e in run.evidence.values()])
            if rating:
                record.update(rating)
                rated += 1
    return {"status": f"{rated} answers rated", "base_url": judge.base_url, "model": judge.model}


def run_eval(config: EvalConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole evaluation and write report.json, report.md and the plots into ``config.out``."""
    from eval.report import write_report

    progress = progress or (lambda text: log.info("%s", text))
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
    started = time.perf_counter()
    if not config.questions.is_file():
        raise FileNotFoundError(f"Question file {config.questions} does not exist.")
    if not config.corpus.is_dir():
        raise FileNotFoundError(f"Corpus folder {config.corpus} does not exist.")
    questions = load_questions(config.questions)
    if config.limit:
        questions = questions[: config.limit]
    if not questions:
        raise ValueError(f"{config.questions} holds no question.")
    config.out.mkdir(parents=True, exist_ok=True)
    settings = eval_settings(config)
    result = asyncio.run(_run_all(config, settings, questions, progress))
    outputs: dict[str, list[SystemOutput]] = result["outputs"]
    support: SupportJudge = result["support"]
    records = {name: [score_question(q, run, support) for q, run in zip(questions, runs)] for name, runs in outputs.items()}
    judge_info = _rate_with_judge(questions, outputs, records, progress)
    report = build_report(config, questions, records, result["meta"], judge_info, time.perf_counter() - started)
    write_report(report, config.out)
    progress(f"Wrote {config.out / 'report.json'}, report.md and plots in {time.perf_counter() - started:.0f} s.")
    return report


def build_report(config: EvalConfig, questions: list[Question], records: dict[str, list[dict[str, Any]]],
                 meta: dict[str, Any], judge_info: dict[str, Any], seconds: float) -> dict[str, Any]:
    from assistant import citations

    systems = {name: aggregate(questions, recs) for name, recs in records.items()}
    per_question = []
    for i, q in enumerate(questions):
        per_question.append({
            "id": q.id, "mode": q.mode, "language": q.language, "answerable": q.answerable, "question": q.question,
            "gold": q.gold, "must_mention": q.must_mention,
            "systems": {name: recs[i] for name, recs in records.items()},
        })
    return {
        "systems": systems,
        "questions": per_question,
        "latency": {name: latency_by_mode(questions, recs) for name, recs in records.items()},
        "meta": {
            "command": config.command, "questions_file": str(config.questions), "corpus": str(config.corpus),
            "questions": len(questions), "answerable": sum(q.answerable for q in questions),
            "gold_items": sum(len(q.gold) for q in questions if q.answerable),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 1),
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "support_thresholds": {
                "lexical_support": citations.LEXICAL_SUPPORT, "embedding_support": citations.EMBEDDING_SUPPORT,
                "embedding_with_overlap": citations.EMBEDDING_WITH_OVERLAP,
                "min_overlap_for_embedding": citations.MIN_OVERLAP_FOR_EMBEDDING,
            },
            "judge": judge_info,
            **meta,
        },
    }


def default_command() -> str:
    return " ".join(["policylab", *sys.argv[1:]]) if sys.argv else "policylab eval"
