"""How the chat model's search translations of requests in other languages behave, and what the gate does with them.

    .venv/bin/python -m eval.query_translations eval/questions/*.jsonl [--out reports/query_translations.jsonl]

For every request of the files whose language is not the library's, it asks the configured chat model
(`POLICYLAB_LLM_BACKEND`, as `policylab ask` does) for the search translation exactly as the answer engine
does, and prints: the e5 cosine between the request and the model's reply (`MIN_TRANSLATION_SIMILARITY` keeps
replies below it from being searched), whether the engine used the reply, and whether the abstention gate would
refuse the request read as typed (what the engine does) and read as translated (what it did before). The last
lines count refusals per kind of request. Needs a chat model: without one nothing is translated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

from assistant.answer import MIN_TRANSLATION_SIMILARITY, AnswerEngine, AnswerRequest
from assistant.language import detect_language
from assistant.service import build_engine
from assistant.settings import get_settings
from eval.metrics import load_questions


def refuses(engine: AnswerEngine, request: AnswerRequest, searched: str) -> bool:
    """Whether the engine's abstention gate refuses ``request`` judged on ``searched`` and the passages found for it."""
    return engine.refuses(request.question, searched, engine.search(searched, request), request)


async def check(engine: AnswerEngine, files: list[Path], out: Path | None) -> None:
    library_language = engine.retriever.library_language()
    totals: Counter[tuple[str, str]] = Counter()
    rows = []
    for q in (q for path in files for q in load_questions(path)):
        language = detect_language(q.question)
        if language == library_language:
            continue
        request = AnswerRequest(q.question, mode=q.mode)
        reply = await engine.query_translation(q.question, language, library_language)
        row = {"id": q.id, "answerable": q.answerable, "reply": reply,
               "translated": engine.usable_query_translation(q.question, reply, library_language),
               "similarity": round(engine.query_similarity(q.question, reply) if reply else 0.0, 3),
               "refused_as_typed": refuses(engine, request, q.question),
               "refused_as_translated": refuses(engine, request, reply or q.question)}
        rows.append(row)
        kind = "answerable" if q.answerable else "outside the library"
        totals[(kind, "requests")] += 1
        totals[(kind, "refused as typed")] += row["refused_as_typed"]
        totals[(kind, "refused as translated")] += row["refused_as_translated"]
        totals[(kind, "translation used")] += row["translated"]
        print(f"{q.id:<10} {kind[:10]:<10} cos {row['similarity']:.3f} typed {'refused' if row['refused_as_typed'] else 'answered':<8}"
              f" translated {'refused' if row['refused_as_translated'] else 'answered':<8} {reply[:70]}", flush=True)
    if out:
        out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"\nreplies below {MIN_TRANSLATION_SIMILARITY} are not searched")
    for (kind, what), n in sorted(totals.items()):
        print(f"{kind}: {what} {n}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="question files in the format of eval/questions/")
    parser.add_argument("--out", type=Path, help="also write one JSON line per request here")
    args = parser.parse_args(argv)
    engine = build_engine(get_settings())
    if engine.model is None:
        raise SystemExit("No chat model is configured (POLICYLAB_LLM_BACKEND=local after `make model`): "
                         "without one, requests are searched as typed and there is nothing to check.")
    if not engine.retriever.allowed_documents(None, None):
        raise SystemExit("The library is empty: index it first with `policylab ingest knowledge/` (or point "
                         "POLICYLAB_DATA_DIR at an indexed data directory); every request would be refused.")
    asyncio.run(check(engine, args.files, args.out))


if __name__ == "__main__":
    main()
