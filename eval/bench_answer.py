"""Answer latency per mode: time to sources, first token and whole answer, decode speed, memory.

    .venv/bin/python -m eval.bench_answer [--backend auto|local|extractive] [--runs 2] [--json-out FILE]
    .venv/bin/python -m eval.bench_answer --backend local --modes synthesis --resynthesis

Runs ``AnswerEngine.stream`` exactly as the app and ``policylab ask`` do, on the configured library
(build it first with ``make index``), for each mode: ask, ask-xl (ask in French, Spanish, German: with a
model the question is first translated for the search), brief, draft and synthesis (the room's mode,
with four attributed contributions). Each mode runs ``--runs`` times, each run on another request of
that mode (so the model server's prefix cache holds the shared instructions, never the whole
prompt); the table shows medians. The citation check's vector memory is emptied before each run:
every figure is a request whose sentences no earlier answer embedded (the load test shows the memory's effect). The first run of a mode also reads that mode's instructions. Memory is the peak resident size of this process plus the local model server, if any.
``--resynthesis`` then measures what a lab room does next: on each synthesis topic, one
contribution more at a time (four, five, six), the synthesis runs again; the model server can reuse
the prompt up to the contributions, so the first token of the next syntheses shows that reuse.
The ``busy`` column is CPU (in cores) used by other processes during the runs: above ~0.2 the
machine was shared and the timings are disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from assistant.answer import AnswerEngine, AnswerRequest, FinalEvent, SourcesEvent, TokenEvent
from assistant.citations import vector_memory
from assistant.service import build_engine
from assistant.settings import get_settings
from assistant.tokens import count_tokens

# Several requests per mode: run i uses request i (cycling), so that no run can reuse the whole
# prompt of the run before it from the model server's prefix cache. The first request of each mode
# is the one earlier tables measured.
REQUESTS = {
    "ask": [
        "What does the 2005 Convention say about the sovereign right of States to adopt cultural policies?",
        "What obligations does the 1954 Convention place on States during armed conflict?",
        "How does the 2003 Convention define intangible cultural heritage?",
    ],
    # questions in another language than the library's: with a model, searched translated (query_translation_s)
    "ask-xl": [
        "Que dit la Convention de 2005 sur le droit souverain des États d'adopter des politiques culturelles ?",
        "¿Qué obligaciones impone la Convención de 1954 a los Estados durante un conflicto armado?",
        "Wie definiert das Übereinkommen von 2003 das immaterielle Kulturerbe?",
    ],
    "brief": [
        "Brief me before a meeting with Vietnamese counterparts on cultural cooperation",
        "Brief me before a meeting with UNESCO on the protection of cultural property",
        "Brief me before a meeting with the Asia-Europe Foundation on cultural diplomacy",
    ],
    "draft": [
        "Draft a joint recommendation on fairer artist mobility between Asia and Europe",
        "Draft a joint recommendation on returning illicitly exported cultural property",
        "Draft a joint recommendation on safeguarding intangible heritage with local communities",
    ],
    "synthesis": [
        "Fairer artist mobility between Asia and Europe",
        "Support for independent artists in Asia-Europe exchanges",
        "Visas and travel grants for touring artists",
    ],
}
CONTRIBUTIONS = [
    {"author": "Ana", "kind": "proposal", "text": "A shared visa fast-track for artists invited by public cultural institutions."},
    {"author": "Minh", "kind": "experience", "text": "Our troupe lost a festival slot because a visa took four months."},
    {"author": "Jonas", "kind": "objection", "text": "Fast-tracks favour big institutions; small collectives need travel grants first."},
    {"author": "Ana", "kind": "position", "text": "Any scheme must be evaluated with the artists themselves, not only by ministries."},
]

# What lab participants add after the first synthesis (--resynthesis): one more each time.
LATER_CONTRIBUTIONS = [
    {"author": "Minh", "kind": "proposal", "text": "Pair every fast-track with a travel fund for collectives from the Global South."},
    {"author": "Jonas", "kind": "experience", "text": "Our Prague residency only worked because the host handled the paperwork for us."},
]


@dataclass
class Run:
    mode: str
    backend: str
    sources_s: float
    first_token_s: float
    total_s: float
    answer_tokens: int
    tokens_per_s: float
    citations: int
    abstained: bool
    busy_cores: float


def _busy_cpu_seconds(exclude: list[psutil.Process]) -> float:
    total = psutil.cpu_times()
    busy = total.user + total.nice + total.system + getattr(total, "irq", 0) + getattr(total, "softirq", 0)
    mine = 0.0
    for proc in exclude:
        try:
            mine += sum(proc.cpu_times()[:4])
        except psutil.Error:
            pass
    return float(busy - mine)


def _model_processes(engine: AnswerEngine) -> list[psutil.Process]:
    server = getattr(getattr(engine.model, "server", None), "pid", None)
    try:
        return [psutil.Process(server)] if server else []
    except psutil.Error:
        return []


async def _one(engine: AnswerEngine, mode: str, index: int, contributions: list[dict] | None = None) -> Run:
    question = REQUESTS[mode][index % len(REQUESTS[mode])]
    if contributions is None:
        contributions = CONTRIBUTIONS if mode == "synthesis" else []
    request = AnswerRequest(question, mode=mode.split("-")[0], contributions=contributions)
    vector_memory(engine.embeddings).clear()  # timed as a request whose sentences no earlier answer embedded
    procs = [psutil.Process(), *_model_processes(engine)]
    before = _busy_cpu_seconds(procs)
    started = time.perf_counter()
    sources = first = 0.0
    final = None
    async for event in engine.stream(request):
        now = time.perf_counter() - started
        if isinstance(event, SourcesEvent) and not sources:
            sources = now
        elif isinstance(event, TokenEvent) and not first:
            first = now
        elif isinstance(event, FinalEvent):
            final = event.answer
    total = time.perf_counter() - started
    procs = [psutil.Process(), *_model_processes(engine)]
    busy = max(0.0, (_busy_cpu_seconds(procs) - before) / total) if total else 0.0
    assert final is not None
    generation = final.timings.get("generation_s", 0.0)
    tokens = int(final.timings.get("answer_tokens", count_tokens(final.answer)))
    return Run(mode, final.backend, sources, first, total, tokens, tokens / generation if generation else 0.0,
               len(final.citations), final.abstained, busy)


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["auto", "local", "extractive", "openai"], default=None,
                        help="override POLICYLAB_LLM_BACKEND for this run")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=list(REQUESTS), choices=list(REQUESTS))
    parser.add_argument("--resynthesis", action="store_true",
                        help="also re-run each synthesis with one, then two contributions more (a room's next syntheses)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.backend:
        settings = settings.model_copy(update={"llm_backend": args.backend})
    engine = build_engine(settings)
    if not engine.retriever.library.documents():
        print(f"The library at {settings.data_dir} is empty: index it first (`make index`).", file=sys.stderr)
        return 2
    print(f"backend: {engine.backend}; library: {settings.data_dir}", file=sys.stderr)
    runs: list[Run] = []
    resyntheses: list[tuple[int, int, Run]] = []  # (topic index, contributions, run)
    peak_rss = 0.0

    async def all_runs() -> None:
        nonlocal peak_rss
        await engine.answer(AnswerRequest("warm-up: what is cultural diversity?"))  # model load, caches
        for mode in args.modes:
            for index in range(args.runs):
                runs.append(await _one(engine, mode, index))
                rss = sum(p.memory_info().rss for p in [psutil.Process(), *_model_processes(engine)])
                peak_rss = max(peak_rss, rss / 2**20)
                print(f"  {mode}: {runs[-1]}", file=sys.stderr)
        if args.resynthesis:
            for index in range(args.runs):
                for extra in range(len(LATER_CONTRIBUTIONS) + 1):
                    contributions = CONTRIBUTIONS + LATER_CONTRIBUTIONS[:extra]
                    run = await _one(engine, "synthesis", index, contributions)
                    resyntheses.append((index, len(contributions), run))
                    print(f"  resynthesis {index + 1}, {len(contributions)} contributions: {run}", file=sys.stderr)

    try:
        asyncio.run(all_runs())
    finally:
        stop = getattr(getattr(engine.model, "server", None), "stop", None)
        if stop:
            stop()
    print("\n| mode | backend | sources (s) | first token (s) | whole answer (s) | answer tokens | tokens/s | citations | abstained | busy cores |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        mine = [r for r in runs if r.mode == mode]
        print(f"| {mode} | {mine[0].backend} | {_median(mine, 'sources_s'):.2f} | {_median(mine, 'first_token_s'):.1f} | "
              f"{_median(mine, 'total_s'):.1f} | {_median(mine, 'answer_tokens'):.0f} | {_median(mine, 'tokens_per_s'):.1f} | "
              f"{_median(mine, 'citations'):.0f} | {sum(r.abstained for r in mine)}/{len(mine)} | {_median(mine, 'busy_cores'):.2f} |")
    if resyntheses:
        print("\n| synthesis topic | contributions | first token (s) | whole answer (s) | busy cores |")
        print("|---|---|---|---|---|")
        for index, count, run in resyntheses:
            print(f"| {REQUESTS['synthesis'][index % len(REQUESTS['synthesis'])]} | {count} | {run.first_token_s:.2f} | "
                  f"{run.total_s:.1f} | {run.busy_cores:.2f} |")
    print(f"\npeak memory (this process + model server): {peak_rss:.0f} MB")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "runs": [asdict(r) for r in runs], "peak_rss_mb": peak_rss,
            "resyntheses": [{"topic": i, "contributions": n, **asdict(r)} for i, n, r in resyntheses],
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
