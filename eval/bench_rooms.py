"""Measure co-drafting rooms: live delivery latency between two members, and time to synthesise a draft.

    .venv/bin/python -m eval.bench_rooms [--posts 50] [--contributions 10] [--json-out PATH] [--skip-live]

1. Live delivery: a real `policylab serve` (extractive backend: the model plays no part in delivery)
   over a temporary data directory with two documents of ``knowledge/``; two headless Chromium
   users (Debian's /usr/bin/chromium) in one room. One posts ``--posts`` contributions one after the
   other; the time is taken in the browsers, from the poster's Enter key to the text appearing in the
   other member's page (``Date.now()`` on both sides: same machine, same clock).
2. Synthesis: ``assistant.rooms.synthesis.synthesise`` from ``--contributions`` contributions, on the
   embedded model when it is installed (the `policylab` settings' ``local_model``, e.g.
   data/models/qwen2.5-coder-1.5b.gguf, and the llama.cpp runtime), else on the extractive backend:
   the output says which. The model server's start-up is timed apart from the synthesis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.settings import REPO_ROOT, Settings, get_settings

FILES = ("asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt", "cultural-diplomacy-long-term-partnerships-2025.txt")
TOPIC = "fairer artist mobility between Asia and Europe"
USERS = {"alice": "alice-password", "bob": "bob-password"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]
CONTRIBUTIONS = [
    ("alice", "proposal", "Ministries of culture should fund visa and travel costs for artists from the Global South."),
    ("bob", "position", "Mobility between Asia and Europe is unequal: European artists travel to Asia far more easily than the reverse."),
    ("carol", "objection", "Funding travel helps only artists already invited; fund open calls and residencies instead."),
    ("bob", "experience", "Our festival lost two Vietnamese performers because their visas came too late."),
    ("carol", "proposal", "Create long-term residency partnerships between Asian and European institutions."),
    ("dara", "position", "Small organisations cannot pre-finance travel; grants must pay in advance."),
    ("alice", "experience", "Artists from Europe touring Asia rarely meet visa refusals; the reverse is common."),
    ("dara", "proposal", "Publish selection criteria in the languages of both regions."),
    ("bob", "objection", "Quotas by region would make selection less about artistic merit."),
    ("carol", "position", "Digital exchanges cannot replace physical mobility but can prepare it."),
]
WATCH_JS = """
(prefix) => {
  window.__seen = {};
  new MutationObserver(() => {
    for (const m of document.body.innerText.matchAll(new RegExp(prefix + ' (\\\\d+) ', 'g')))
      if (window.__seen[m[1]] === undefined) window.__seen[m[1]] = Date.now();
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""
SENT_JS = """
() => document.querySelector('#chat-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') window.__sent = Date.now();
}, {capture: true, once: true})
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _library(root: Path) -> Path:
    library = root / "library"
    library.mkdir()
    knowledge = REPO_ROOT / "knowledge"
    catalog = [e for e in json.loads((knowledge / "catalog.json").read_text()) if e["file"] in FILES]
    (library / "catalog.json").write_text(json.dumps(catalog))
    for name in FILES:
        shutil.copy(knowledge / name, library / name)
    return library


def measure_live(posts: int) -> dict:
    """Post ``posts`` contributions as alice; the milliseconds until each shows in bob's page."""
    from playwright.sync_api import sync_playwright

    from assistant.app.auth import add_user

    root = Path(tempfile.mkdtemp(prefix="bench-rooms-"))
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYLAB_", "CHAINLIT_"))}
    env.update(POLICYLAB_DATA_DIR=str(data), POLICYLAB_LLM_BACKEND="extractive", HF_HUB_OFFLINE="1")
    policylab = str(Path(sys.executable).with_name("policylab"))
    subprocess.run([policylab, "ingest", str(_library(root))], env=env, cwd=REPO_ROOT, check=True, capture_output=True)
    for name, password in USERS.items():
        add_user(data / "users.json", name, password)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "server.log").open("a")
    server = subprocess.Popen([policylab, "serve", "--port", str(port)], env=env, cwd=REPO_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Policy Lab Assistant ready" not in (data / "server.log").read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"The app did not start; see {data / 'server.log'}")
            time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pages = {}
            for name, password in USERS.items():
                page = browser.new_context().new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                page.fill("#email", name)
                page.fill("#password", password)
                page.click("button[type=submit]")
                page.wait_for_selector("#chat-input")
                pages[name] = page
            alice, bob = pages["alice"], pages["bob"]
            alice.click("#command-button")
            alice.locator("#command-popover").get_by_text("Room", exact=True).click()
            alice.fill("#chat-input", TOPIC)
            alice.press("#chat-input", "Enter")
            alice.wait_for_function("() => /Join code [A-Z0-9]{6}/.test(document.body.innerText)")
            code = alice.evaluate("() => document.body.innerText.match(/Join code ([A-Z0-9]{6})/)[1]")
            bob.goto(f"{url}/policylab/rooms/join/{code}")
            bob.wait_for_function("(t) => document.body.innerText.includes(t)", arg=f"Room: {TOPIC}")
            bob.evaluate(WATCH_JS, "Benchmark post")
            delays = []
            for i in range(posts):
                alice.evaluate(SENT_JS)
                alice.fill("#chat-input", f"Benchmark post {i} about fair artist mobility.")
                alice.press("#chat-input", "Enter")
                bob.wait_for_function("(i) => window.__seen[String(i)] !== undefined", arg=i, timeout=30_000)
                delays.append(bob.evaluate("(i) => window.__seen[String(i)]", i) - alice.evaluate("() => window.__sent"))
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    return {"posts": posts, "p50_ms": statistics.median(delays), "p95_ms": percentile(delays, 95),
            "max_ms": max(delays), "min_ms": min(delays), "delays_ms": delays}


def measure_synthesis(count: int, extractive: bool = False) -> dict:
    """Time one synthesis from ``count`` contributions, on the embedded model if installed."""
    from assistant.rooms.models import Contribution
    from assistant.service import build_engine
    from ingest.pipeline import ingest_paths

    configured = get_settings()
    root = Path(tempfile.mkdtemp(prefix="bench-rooms-synth-"))
    try:
        settings = Settings(data_dir=root / "data", models_dir=configured.models_path.resolve(),
                            local_model=configured.local_model, llm_backend="extractive" if extractive else "auto")
        ingest_paths([_library(root)], settings)
        engine = build_engine(settings)
        contributions = [Contribution(i + 1, a, k, t, "") for i, (a, k, t) in enumerate((CONTRIBUTIONS * 2)[:count])]
        startup, elapsed, version = asyncio.run(_timed_synthesis(engine, contributions))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"contributions": count, "backend": version.backend, "embedded_model": engine.model is not None,
            "model_startup_s": round(startup, 2), "synthesis_s": round(elapsed, 2), "citations": len(version.citations),
            "draft_chars": len(version.body)}


async def _timed_synthesis(engine, contributions) -> tuple[float, float, object]:
    """(model start-up s, synthesis s, version), in one event loop (the model's client is bound to it)."""
    from assistant.rooms.synthesis import synthesise

    startup = 0.0
    try:
        if engine.model is not None:  # the model server starts on first use: time it apart
            started = time.perf_counter()
            async for _ in engine.model.stream([{"role": "user", "content": "Say OK."}], max_tokens=2, temperature=0.0):
                break
            startup = time.perf_counter() - started
        started = time.perf_counter()
        version = await synthesise(engine, TOPIC, contributions, "alice")
        return startup, time.perf_counter() - started, version
    finally:
        close = getattr(engine.model, "aclose", None)
        if close:
            await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--contributions", type=int, default=10)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-synthesis", action="store_true")
    parser.add_argument("--extractive", action="store_true", help="synthesise without the model even if it is installed")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    figures: dict = {"load_average_before": os.getloadavg()}
    if not args.skip_live:
        figures["live"] = measure_live(args.posts)
        live = figures["live"]
        print(f"live delivery over {live['posts']} posts: p50 {live['p50_ms']:.0f} ms, p95 {live['p95_ms']:.0f} ms, "
              f"max {live['max_ms']:.0f} ms")
    if not args.skip_synthesis:
        figures["synthesis"] = synth = measure_synthesis(args.contributions, args.extractive)
        which = ("embedded model" if synth["embedded_model"] else
                 "extractive backend (as asked)" if args.extractive else "extractive backend (no embedded model installed)")
        print(f"synthesis from {synth['contributions']} contributions: {synth['synthesis_s']:.1f} s on the {which} "
              f"[{synth['backend']}], {synth['citations']} verified citations; model start-up {synth['model_startup_s']:.1f} s")
    figures["load_average_after"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
