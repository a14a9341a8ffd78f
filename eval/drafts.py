"""Record the chat model's drafts once; measure a change to the citation check on them, without the model.

    .venv/bin/python -m eval.drafts record --questions FILE.jsonl [FILE.jsonl …] --out reports/drafts/NAME.jsonl
    .venv/bin/python -m eval.drafts check --drafts reports/drafts/NAME.jsonl --out reports/drafts/NAME.checked.json \
        [--compare reports/drafts/OTHER.checked.json]

A change to what happens after the model has written (the verifier's names rule, dropping repeated statements,
the support thresholds) is judged on what the model really writes, and a 1.5B model on two cores takes about an hour
to answer four question sets. ``record`` answers every question of the files with the configured model
(``POLICYLAB_LLM_BACKEND=local`` by default here) and keeps each reply (its prompt echo dropped) with the passages
it was given (``Answer.model_draft``); ``check`` runs the product's checking steps on each recorded reply
(``replies.checkable``, ``AnswerEngine.verifier_for``, ``CitationVerifier.verify``, ``replies.with_title_as_heading``,
``replies.without_empty_sections``)
and writes the checked text, its citations and totals. Run ``check`` before and after a change (a ``git stash``
or a second worktree) and ``--compare`` the two: every sentence or citation that differs is printed, with totals.
Needs the index of the library the drafts were recorded on (``make index``): sentence vectors are read from it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from eval.metrics import load_questions


def _engine(with_model: bool):
    from assistant.answer import AnswerEngine
    from assistant.llm import select_model
    from assistant.retrieval import Retriever
    from assistant.settings import Settings

    settings = Settings(llm_backend=os.environ.get("POLICYLAB_LLM_BACKEND", "local")) if with_model else Settings()
    return AnswerEngine(settings, Retriever(settings), select_model(settings) if with_model else None)


def record(question_files: list[Path], out: Path) -> int:
    """Answer every answerable and unanswerable question with the model; one JSON line per reply it wrote."""
    from assistant.answer import AnswerRequest

    engine = _engine(with_model=True)
    if engine.model is None:
        print("No chat model is configured: install one with `make llm` (or set POLICYLAB_LLM_BASE_URL).", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with out.open("w", encoding="utf-8") as sink:
            for path in question_files:
                for question in load_questions(path):
                    started = time.perf_counter()
                    answer = asyncio.run(engine.answer(AnswerRequest(question.question, mode=question.mode)))
                    draft = answer.model_draft
                    print(f"{question.id} ({question.mode}) {time.perf_counter() - started:.0f} s, "
                          f"{'a draft' if draft else 'no draft (abstained before the model)'}", flush=True)
                    if draft is None:
                        continue
                    sink.write(json.dumps({
                        "id": question.id, "question": question.question, "mode": question.mode, "reply": draft.reply,
                        "passages": [dataclasses.asdict(p) for p in draft.passages],
                        "prompt_passages": draft.prompt_passages,
                    }, ensure_ascii=False) + "\n")
                    sink.flush()
                    written += 1
    finally:
        if hasattr(engine.model, "close"):
            engine.model.close()
    print(f"{written} drafts written to {out}")
    return 0


def check_one(engine: Any, item: dict[str, Any]) -> dict[str, Any]:
    """The product's checking steps on one recorded reply."""
    from assistant.replies import TITLED_MODES, checkable, with_title_as_heading, without_empty_sections
    from assistant.citations import VerificationReport, split_sentences, strip_markers
    from assistant.types import Passage

    passages = [Passage(**p) for p in item["passages"]]
    draft, strict, declined = checkable(item["reply"])
    text, citations, report = "", [], VerificationReport()
    if draft:
        verifier = engine.verifier_for(passages, (), item["question"])
        text, citations, report = verifier.verify(draft, passages, strict)
        if item.get("mode") in TITLED_MODES:
            text = with_title_as_heading(text)
        text = without_empty_sections(text)
    return {
        "id": item["id"], "declined": declined, "strict": strict, "text": text,
        "reply_sentences": sum(1 for s in split_sentences(item["reply"]) if strip_markers(s).strip()),
        "sentences": [strip_markers(s).strip() for s in split_sentences(text) if strip_markers(s).strip()],
        "citations": [[c.source_file, c.quote] for c in citations], "verification": report.to_dict(),
    }


def _read_drafts(path: Path) -> list[dict[str, Any]]:
    """The recorded drafts of ``path``; ``ValueError`` with the line at fault if one is not a record."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            missing = {"id", "question", "reply", "passages"} - set(item)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a JSON record ({error}).") from None
        if missing:
            raise ValueError(f"{path}, line {number}: a recorded draft needs {', '.join(sorted(missing))}.")
        items.append(item)
    return items


def check(drafts: Path, out: Path | None, compare: Path | None) -> int:
    for path, what in ((drafts, "drafts file"), (compare, "--compare file")):
        if path is not None and not path.is_file():
            print(f"No {what} at {path}: record drafts with `python -m eval.drafts record …`, and write a check to "
                  "compare with `check --out`.", file=sys.stderr)
            return 2
    try:
        items = _read_drafts(drafts)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    engine = _engine(with_model=False)
    checked = [check_one(engine, item) for item in items]
    totals = {
        "drafts": len(checked),
        "reply_sentences": sum(c["reply_sentences"] for c in checked),
        "sentences_kept": sum(len(c["sentences"]) for c in checked),
        "citations": sum(len(c["citations"]) for c in checked),
        "distinct_quotes": sum(len({tuple(x) for x in c["citations"]}) for c in checked),
        "without_citation": sum(1 for c in checked if not c["citations"]),
    }
    print(json.dumps(totals))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"drafts": str(drafts), "totals": totals, "checked": checked}, ensure_ascii=False,
                                  indent=1), encoding="utf-8")
    if compare:
        _compare(json.loads(compare.read_text(encoding="utf-8")), {"totals": totals, "checked": checked})
    return 0


def _compare(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Print each draft whose kept sentences or citations differ, then both runs' totals."""
    earlier = {c["id"]: c for c in before["checked"]}
    changed = 0
    for now in after["checked"]:
        then = earlier.get(now["id"])
        if then is None:
            continue
        gone = [s for s in then["sentences"] if s not in now["sentences"]]
        new = [s for s in now["sentences"] if s not in then["sentences"]]
        lost = [q for q in then["citations"] if q not in now["citations"]]
        won = [q for q in now["citations"] if q not in then["citations"]]
        if not (gone or new or lost or won):
            continue
        changed += 1
        print(f"--- {now['id']}")
        for label, rows in (("- sentence", gone), ("+ sentence", new)):
            for row in rows:
                print(f"  {label}: {row[:200]}")
        for label, rows in (("- citation", lost), ("+ citation", won)):
            for source, quote in rows:
                print(f"  {label}: {source} | {quote[:120]}")
    print(f"{changed} of {len(after['checked'])} drafts changed")
    for key in after["totals"]:
        print(f"  {key}: {before['totals'].get(key)} -> {after['totals'][key]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record", help="answer question files with the chat model, keep its drafts")
    recording.add_argument("--questions", type=Path, nargs="+", required=True)
    recording.add_argument("--out", type=Path, required=True)
    checking = commands.add_parser("check", help="run the citation check on recorded drafts")
    checking.add_argument("--drafts", type=Path, required=True)
    checking.add_argument("--out", type=Path)
    checking.add_argument("--compare", type=Path, help="an earlier `check --out` file to diff against")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.questions, args.out)
    return check(args.drafts, args.out, args.compare)


if __name__ == "__main__":
    raise SystemExit(main())
