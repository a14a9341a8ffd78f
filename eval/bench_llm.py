"""Measure the local chat models: load time, time to first token and decode speed on a ~500-token prompt.

    .venv/bin/python -m eval.bench_llm [NAME ...] [--runs 3] [--prompt-tokens 500] [--max-tokens 128]

Each model (default: every installed one of ``scripts/install_model.py``'s list) is served by
``LocalLlamaServer`` exactly as the app serves it, and queried through ``LocalChatModel``. Every run
starts its prompt with a different line so the server cannot reuse the previous run's prompt cache.
The passages are articles of the UNESCO 2001 Declaration from ``knowledge/``. Figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from assistant.llm import LocalChatModel
from assistant.local_server import LocalLlamaServer
from assistant.settings import get_settings

NAMES = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
SOURCE = "unesco-2001-universal-declaration-cultural-diversity.md"
QUESTION = "According to the passages, why must cultural goods and services not be treated as mere commodities? Cite the article."


@dataclass
class Figures:
    model: str
    file_mb: float
    load_s: float
    prompt_tokens: int
    first_token_s: float
    prompt_tok_per_s: float
    completion_tokens: int
    decode_tok_per_s: float
    rss_mb: float
    other_cores: float  # CPU (in cores) used by other processes during the runs: > 0.2 means the figures are disturbed
    sample: str


def _count_tokens(server: LocalLlamaServer, text: str) -> int:
    url = server.base_url.removesuffix("/v1") + "/extras/tokenize/count"
    req = urllib.request.Request(url, json.dumps({"input": text}).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return int(json.loads(resp.read())["count"])


def _passages(knowledge_dir: Path) -> list[str]:
    text = (knowledge_dir / SOURCE).read_text(encoding="utf-8")
    return [p.strip() for p in re.split(r"\n(?=### Article)", text) if p.startswith("### Article")]


def _messages(server: LocalLlamaServer, passages: list[str], target: int, run: int) -> tuple[list[dict[str, str]], int]:
    """System + user messages whose text is about ``target`` tokens (passages added until reached)."""
    system = f"Run {run}. You answer questions about cultural policy using only the numbered passages. Cite passages as [P1], [P2]."
    chosen: list[str] = []

    def user() -> str:
        return "\n\n".join(chosen) + f"\n\nQuestion: {QUESTION}"

    for passage in passages:
        chosen.append(f"[P{len(chosen) + 1}] {passage}")
        if _count_tokens(server, system + "\n" + user()) >= target:
            break
    while _count_tokens(server, system + "\n" + user()) > target * 1.05:  # trim the last passage to land near target
        words = chosen[-1].split()
        if len(words) < 20:
            break
        chosen[-1] = " ".join(words[: int(len(words) * 0.85)])
    text = user()
    return [{"role": "system", "content": system}, {"role": "user", "content": text}], _count_tokens(server, system + "\n" + text)


def _busy_cpu_seconds(server_proc: psutil.Process) -> float:
    """CPU seconds the whole machine spent busy, minus those of the model server and of this process."""
    total = psutil.cpu_times()
    busy = total.user + total.nice + total.system + getattr(total, "irq", 0) + getattr(total, "softirq", 0)
    mine = sum(sum(p.cpu_times()[:4]) for p in (server_proc, psutil.Process()))
    return float(busy - mine)


async def _run_once(model: LocalChatModel, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, float, str, int]:
    started = time.monotonic()
    first = last = 0.0
    pieces: list[str] = []
    async for piece in model.stream(messages, max_tokens=max_tokens, temperature=0.0):
        last = time.monotonic() - started
        if not pieces:
            first = last
        pieces.append(piece)
    return first, last, "".join(pieces), len(pieces)


def bench(name: str, path: Path, *, runs: int, prompt_tokens: int, max_tokens: int, n_ctx: int, threads: int | None) -> Figures:
    settings = get_settings()
    server = LocalLlamaServer(path, n_ctx=n_ctx, n_threads=threads, log_path=settings.logs_dir / "bench-llm-server.log")
    with server:
        model = LocalChatModel(server, timeout=600, max_retries=0)
        passages = _passages(settings.knowledge_dir)
        results = []

        server_proc = psutil.Process(server.pid)
        rss = 0.0

        async def runs_in_one_loop() -> None:
            nonlocal rss
            for run in range(runs):
                messages, n_prompt = _messages(server, passages, prompt_tokens, run)
                before = _busy_cpu_seconds(server_proc)
                first, last, text, pieces = await _run_once(model, messages, max_tokens)
                others = max(0.0, (_busy_cpu_seconds(server_proc) - before) / last) if last else 0.0
                n_out = _count_tokens(server, text) if text else 0
                results.append((first, last, n_out, pieces, text, n_prompt, others))
                print(f"  {name} run {run + 1}: first token {first:.2f} s, {n_out} tokens in {last:.2f} s; "
                      f"other processes used {others:.2f} cores meanwhile", file=sys.stderr)
            rss = server_proc.memory_info().rss / 1e6
            await model.aclose()

        asyncio.run(runs_in_one_loop())
        load = server.load_seconds or 0.0
    first_s = statistics.median(r[0] for r in results)
    decode = statistics.median((r[3] - 1) / (r[1] - r[0]) for r in results if r[3] > 1 and r[1] > r[0])
    n_prompt = int(statistics.median(r[5] for r in results))
    return Figures(
        model=name, file_mb=round(path.stat().st_size / 1e6), load_s=round(load, 2), prompt_tokens=n_prompt,
        first_token_s=round(first_s, 2), prompt_tok_per_s=round(n_prompt / first_s, 1),
        completion_tokens=int(statistics.median(r[2] for r in results)), decode_tok_per_s=round(decode, 1),
        rss_mb=round(rss), other_cores=round(max(r[6] for r in results), 2), sample=" ".join(results[-1][4].split())[:160],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"models to measure (default: installed ones of {', '.join(NAMES)})")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ctx", type=int, default=get_settings().llm_context)
    parser.add_argument("--threads", type=int, default=get_settings().llm_threads)
    parser.add_argument("--json", action="store_true", help="print one JSON object per model")
    args = parser.parse_args(argv)
    models_dir = get_settings().models_path
    names = args.names or [n for n in NAMES if (models_dir / f"{n}.gguf").is_file()]
    if not names:
        print(f"No model installed in {models_dir}: run `make model LLM_MODEL=smollm2-135m`.", file=sys.stderr)
        return 1
    rows = []
    for name in names:
        path = models_dir / f"{name}.gguf"
        if not path.is_file():
            print(f"{path} is missing: run `make model LLM_MODEL={name}`.", file=sys.stderr)
            return 1
        rows.append(bench(name, path, runs=args.runs, prompt_tokens=args.prompt_tokens, max_tokens=args.max_tokens,
                          n_ctx=args.ctx, threads=args.threads))
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row)))
        return 0
    print(f"{'model':20} {'MB':>5} {'load s':>7} {'prompt':>6} {'1st tok s':>9} {'prompt t/s':>10} {'out':>4} "
          f"{'decode t/s':>10} {'RSS MB':>7} {'others':>6}")
    for r in rows:
        print(f"{r.model:20} {r.file_mb:5.0f} {r.load_s:7.2f} {r.prompt_tokens:6d} {r.first_token_s:9.2f} {r.prompt_tok_per_s:10.1f} "
              f"{r.completion_tokens:4d} {r.decode_tok_per_s:10.1f} {r.rss_mb:7.0f} {r.other_cores:6.2f}")
    for r in rows:
        print(f"{r.model}: {r.sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
