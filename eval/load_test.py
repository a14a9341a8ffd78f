"""Bounded loopback load test of the chat app: ``python -m eval.load_test`` (``make load-test``).

Run 1 (the app's own overhead): `policylab serve` on a temporary data directory with the extractive
backend; N simulated users (default 20) chat over Chainlit's Socket.IO protocol for a fixed time
(default 60 s), each sending its next question as soon as the previous answer is complete. Reported:
requests, errors (an error message, a missing verified answer, or no answer within the timeout),
p50/p95/max latency, and the server's RSS memory (psutil, the whole process tree) at start, after
warm-up and at the end; growth is measured from the warmed-up figure.

Run 2 (queueing on the embedded model, when one is installed): 3 users, one question each at the same
moment, on the local llama.cpp model. Reported: each answer's latency in order of completion and
whether every request finished (fairly queued, none lost or silently timed out).

Everything listens on 127.0.0.1 and stops by itself; figures go to ``reports/load/load_test.json``
(read by ``eval/reliability_report.py``) and to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from eval.chat_client import ChatClient, ChatError

REPO = Path(__file__).resolve().parent.parent
POLICYLAB = Path(sys.executable).with_name("policylab")
OUT = REPO / "reports" / "load" / "load_test.json"
LIBRARY_FILES = (
    "unesco-2005-convention-diversity-of-cultural-expressions.md",
    "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt",
)
QUESTIONS = (
    "What does the 2005 Convention say about cultural policies?",
    "What role does culture play in Vietnam's diplomacy?",
    "How often must a Party report to UNESCO under the 2005 Convention?",
    "What is the International Fund for Cultural Diversity?",
    "How does Vietnam use cultural soft power?",
    "What does the 2005 Convention say about preferential treatment for developing countries?",
    "What are the objectives of the 2005 Convention?",
    "What does the 2005 Convention mean by cultural expressions?",
    "Which guiding principles does the 2005 Convention set out?",
    "What rights do Parties have at the national level under the 2005 Convention?",
    "How should Parties integrate culture in sustainable development?",
    "What does the 2005 Convention say about education and public awareness?",
    "What role does civil society play under the 2005 Convention?",
    "How are disputes between Parties settled under the 2005 Convention?",
    "What does the 2005 Convention say about cooperation for development?",
    "What are the functions of the Intergovernmental Committee?",
    "How does the 2005 Convention relate to other treaties?",
    "What does the 2005 Convention say about the role of UNESCO's secretariat?",
    "How does Vietnam link cultural diplomacy with its cultural industries?",
    "What does General Secretary To Lam say about diplomacy in the new era?",
    "What is the role of social entities in Vietnam's cultural diplomacy?",
    "How does Vietnam want to build a team for cultural diplomacy?",
    "What does the article say about promoting Vietnam's national image?",
    "How do digital content and films serve Vietnam's soft power?",
)  # a chat asks them in turn from its own start; a 120 s run (~300 answers) still asks each ~12 times, which
# favours the answers' remembered sentence vectors (docs/benchmarks.md, "Concurrent chats")
PASSWORD = "load-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


class Server:
    """`policylab serve` over ``data_dir`` in its own process group; stopped by :meth:`stop` or at exit."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYLAB_", "CHAINLIT_"))}
        self.env.update(POLICYLAB_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", **env)
        self.log = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> None:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen([str(POLICYLAB), "serve", "--port", str(self.port)], env=self.env, cwd=REPO,
                                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode} (log: {self.log}):\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    if "Policy Lab Assistant ready" in self.log.read_text(errors="replace"):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the app did not start within {timeout:.0f} s (log: {self.log}):\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def prepare(root: Path, users: int, env: dict[str, str]) -> Path:
    """A data directory with a two-document library indexed by `policylab ingest` and ``users`` accounts."""
    from assistant.app.auth import add_user

    library = root / "library"
    library.mkdir(parents=True)
    knowledge = REPO / "knowledge"
    catalog = [e for e in json.loads((knowledge / "catalog.json").read_text()) if e["file"] in LIBRARY_FILES]
    (library / "catalog.json").write_text(json.dumps(catalog))
    for name in LIBRARY_FILES:
        shutil.copy(knowledge / name, library / name)
    data_dir = root / "data"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYLAB_", "CHAINLIT_"))}
    run_env.update(POLICYLAB_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **env)
    done = subprocess.run([str(POLICYLAB), "ingest", str(library)], env=run_env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"indexing the load-test library failed:\n{done.stdout}\n{done.stderr}")
    for n in range(users):
        add_user(data_dir / "users.json", f"user{n:02d}", PASSWORD, "user")
    return data_dir


async def _user(url: str, n: int, stop_at: float, timeout: float, log: list[dict[str, Any]]) -> None:
    """One simulated user: log in, open a chat, ask questions back to back until ``stop_at``."""
    client = ChatClient(url, f"user{n:02d}", PASSWORD)
    try:
        await client.open()
        turn = 0
        while time.monotonic() < stop_at:
            question = QUESTIONS[(n + turn) % len(QUESTIONS)]
            turn += 1
            started = time.monotonic()
            try:
                reply = await client.ask(question, timeout=timeout)
            except ChatError as exc:
                log.append({"user": n, "ok": False, "seconds": time.monotonic() - started, "error": str(exc)})
                continue
            ok = not reply.errors and (reply.verified or "does not cover" in reply.answer)
            entry: dict[str, Any] = {"user": n, "ok": ok, "seconds": reply.seconds, "at": started}
            if not ok:
                entry["error"] = (reply.errors or [reply.answer])[0][:200]
            log.append(entry)
    except Exception as exc:  # a user that cannot even connect counts as an error, the others go on
        log.append({"user": n, "ok": False, "seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        await client.close()


async def _sample_memory(pid: int, stop_at: float, samples: list[float]) -> None:
    while time.monotonic() < stop_at:
        samples.append(tree_rss_mb(pid))
        await asyncio.sleep(1.0)


async def chat_load(url: str, pid: int, users: int, seconds: float, timeout: float, warmup: float) -> dict[str, Any]:
    """``users`` concurrent chats for ``seconds``; the first ``warmup`` seconds' requests are not timed."""
    log: list[dict[str, Any]] = []
    rss_start = tree_rss_mb(pid)
    began = time.monotonic()
    stop_at = began + seconds
    samples: list[float] = []
    sampler = asyncio.create_task(_sample_memory(pid, stop_at + timeout, samples))
    await asyncio.gather(*[_user(url, n, stop_at, timeout, log) for n in range(users)])
    sampler.cancel()
    rss_end = tree_rss_mb(pid)
    warm = [s for s, t in zip(samples, range(len(samples))) if t >= warmup]
    rss_warm = warm[0] if warm else rss_start
    timed = [e["seconds"] for e in log if e["ok"] and e.get("at", began) - began >= warmup]
    errors = [e for e in log if not e["ok"]]
    return {
        "users": users, "seconds": seconds, "warmup_s": warmup, "distinct_questions": len(QUESTIONS),
        "requests": len(log), "errors": len(errors),
        "error_samples": [e["error"] for e in errors[:5]],
        "answers_per_s": round(len(log) / (time.monotonic() - began), 2),
        "latency_s": {"p50": round(percentile(timed, 0.5), 2), "p95": round(percentile(timed, 0.95), 2),
                      "max": round(max(timed), 2) if timed else 0.0, "timed_requests": len(timed)},
        "rss_mb": {"start": round(rss_start, 1), "after_warmup": round(rss_warm, 1), "end": round(rss_end, 1),
                   "peak": round(max(samples or [rss_end]), 1),
                   "growth_pct_after_warmup": round(100 * (rss_end - rss_warm) / rss_warm, 1) if rss_warm else 0.0},
    }


async def queue_run(url: str, users: int, timeout: float) -> dict[str, Any]:
    """``users`` questions sent at the same moment to a model-backed app: order and latency of completion."""
    clients = [ChatClient(url, f"user{n:02d}", PASSWORD) for n in range(users)]
    await asyncio.gather(*[c.open() for c in clients])
    # one warm-up answer, so the first timed request does not also pay for starting the model server
    await clients[0].ask(QUESTIONS[1], timeout=timeout)
    began = time.monotonic()

    async def one(n: int) -> dict[str, Any]:
        try:
            reply = await clients[n].ask(QUESTIONS[n % len(QUESTIONS)], timeout=timeout)
        except ChatError as exc:
            return {"user": n, "ok": False, "done_s": round(time.monotonic() - began, 1), "error": str(exc)}
        ok = not reply.errors and (reply.verified or "does not cover" in reply.answer)
        return {"user": n, "ok": ok, "done_s": round(time.monotonic() - began, 1),
                "backend": reply.answer.rsplit("·", 1)[-1].strip(" *") if reply.verified else "",
                "error": (reply.errors or [""])[0][:200]}

    results = await asyncio.gather(*[one(n) for n in range(users)])
    for client in clients:
        await client.close()
    finished = sorted(results, key=lambda r: r["done_s"])
    return {"users": users, "completed": sum(r["ok"] for r in results), "lost_or_failed": sum(not r["ok"] for r in results),
            "completion_order": [r["user"] for r in finished], "done_s": [r["done_s"] for r in finished],
            "results": finished}


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {
        "cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}}
    root = Path(tempfile.mkdtemp(prefix="policylab-load-"))
    try:
        data_dir = prepare(root / "extractive", args.users, {})
        server = Server(data_dir, {"POLICYLAB_LLM_BACKEND": "extractive"})
        server.start()
        try:
            assert server.process is not None
            print(f"Run 1: {args.users} concurrent chats for {args.seconds:.0f} s (extractive backend) at {server.url}")
            report["extractive"] = asyncio.run(chat_load(server.url, server.process.pid, args.users, args.seconds,
                                                         args.timeout, args.warmup))
        finally:
            server.stop()
        model = REPO / "data" / "models" / f"{args.model}.gguf"
        from assistant.local_server import runtime_installed

        if args.skip_model:
            report["model"] = {"skipped": "--skip-model"}
        elif not runtime_installed() or not model.is_file():
            report["model"] = {"skipped": f"no local model ({model} or llama-cpp-python missing; `make llm`)"}
        else:
            env = {"POLICYLAB_LLM_BACKEND": "local", "POLICYLAB_LOCAL_MODEL": str(model)}
            data_dir = prepare(root / "model", args.model_users, env)
            server = Server(data_dir, env)
            server.start()
            try:
                print(f"Run 2: {args.model_users} questions at once on the local model {model.name}")
                report["model"] = {"model": model.name, **asyncio.run(queue_run(server.url, args.model_users, args.model_timeout))}
            finally:
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def summary(report: dict[str, Any]) -> str:
    lines = []
    ex = report.get("extractive")
    if ex:
        lat, rss = ex["latency_s"], ex["rss_mb"]
        lines += [f"Run 1, {ex['users']} concurrent chats for {ex['seconds']:.0f} s (extractive backend, "
                  f"{ex.get('distinct_questions', '?')} distinct questions):",
                  f"  requests {ex['requests']}, errors {ex['errors']}, {ex['answers_per_s']} answers/s",
                  f"  latency p50 {lat['p50']} s, p95 {lat['p95']} s, max {lat['max']} s ({lat['timed_requests']} after warm-up)",
                  f"  server RSS {rss['start']} MB at start, {rss['after_warmup']} MB after warm-up, {rss['end']} MB at the end "
                  f"(growth {rss['growth_pct_after_warmup']} % after warm-up, peak {rss['peak']} MB)"]
        lines += [f"  error: {e}" for e in ex["error_samples"]]
    model = report.get("model", {})
    if "skipped" in model:
        lines.append(f"Run 2 skipped: {model['skipped']}")
    elif model:
        lines += [f"Run 2, {model['users']} questions at once on {model['model']}: {model['completed']} completed, "
                  f"{model['lost_or_failed']} lost or failed",
                  f"  completed at {', '.join(f'{s} s' for s in model['done_s'])} (users in order {model['completion_order']})"]
        lines += [f"  error: {r['error']}" for r in model["results"] if r["error"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent chats of run 1")
    parser.add_argument("--seconds", type=float, default=120.0, help="duration of run 1, warm-up included (default: 60 s warm-up, then the 60 s measured)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of run 1 not counted in latency and memory growth")
    parser.add_argument("--timeout", type=float, default=300.0, help="a run-1 answer slower than this is an error")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="local GGUF model of run 2 (data/models/<name>.gguf)")
    parser.add_argument("--model-users", type=int, default=3, help="simultaneous questions of run 2")
    parser.add_argument("--model-timeout", type=float, default=900.0, help="a run-2 answer slower than this is an error")
    parser.add_argument("--skip-model", action="store_true", help="run 1 only")
    parser.add_argument("--out", type=Path, default=OUT, help="where the JSON figures go")
    args = parser.parse_args(argv)
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(summary(report))
    print(f"Figures written to {args.out}")
    ex = report.get("extractive", {})
    failed = ex.get("errors", 1) > 0 or report.get("model", {}).get("lost_or_failed", 0) > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
