"""In the browser, with the embedded model: send → first source shown, send → first answer token, app memory.

    .venv/bin/python -m eval.bench_browser [--backend local|extractive] [--questions 3] [--json-out FILE]

Starts `policylab serve` on a free port over a temporary data directory (three documents of
``knowledge/`` indexed, one account), drives Debian's Chromium with Playwright exactly as a user
would (log in, type, press Enter), and times in the page itself, with a MutationObserver, when the
"Sources found" step and the first answer text appear. Memory is the resident size of the app
process and its children (the llama.cpp server) after the answers. Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from assistant.settings import get_settings
from eval.load_test import Server, tree_rss_mb

POLICYLAB = Path(sys.executable).with_name("policylab")
CHROMIUM = "/usr/bin/chromium"
FILES = (
    "unesco-2005-convention-diversity-of-cultural-expressions.md",
    "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt",
    "asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt",
)
QUESTIONS = (
    "What does the 2005 Convention say about the sovereign right of States to adopt cultural policies?",
    "What role does culture play in Vietnam's comprehensive diplomacy?",
    "Which challenges of artist mobility did the ASEF lab participants describe?",
)
DONE = "checked against the sources"
# Installed in the page before pressing Enter: records when the sources step and the first answer text appear.
MEASURE_JS = """
() => {
  const count = (sel, text) => [...document.querySelectorAll(sel)].filter(e => e.innerText.includes(text)).length;
  const answers = () => [...document.querySelectorAll('[data-step-type="assistant_message"] .message-content')];
  const base = {sources: count('[data-step-type="retrieval"]', 'Sources found'), answers: answers().length};
  window.__timing = {};
  const input = document.querySelector('#chat-input');
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    const t0 = performance.now();
    const observer = new MutationObserver(() => {
      const t = window.__timing, now = performance.now() - t0;
      if (t.sources === undefined && count('[data-step-type="retrieval"]', 'Sources found') > base.sources) t.sources = now;
      const list = answers();
      if (t.token === undefined && list.length > base.answers && list[list.length - 1].innerText.trim()) t.token = now;
      if (t.sources !== undefined && t.token !== undefined) observer.disconnect();
    });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  }, {capture: true, once: true});
}
"""


def _prepare(root: Path, env: dict[str, str]) -> None:
    from assistant.app.auth import add_user

    knowledge = get_settings().knowledge_dir
    library = root / "library"
    library.mkdir()
    catalog = [e for e in json.loads((knowledge / "catalog.json").read_text()) if e["file"] in FILES]
    (library / "catalog.json").write_text(json.dumps(catalog))
    for name in FILES:
        shutil.copy(knowledge / name, library / name)
    subprocess.run([str(POLICYLAB), "ingest", str(library)], env=env, check=True, capture_output=True, timeout=1800)
    add_user(Path(env["POLICYLAB_DATA_DIR"]) / "users.json", "bench", "bench-password", "user")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "extractive"], default="local")
    parser.add_argument("--questions", type=int, default=3, choices=range(1, len(QUESTIONS) + 1))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    settings = get_settings()
    if args.backend == "local" and not settings.local_model_path.is_file():
        print(f"No local model at {settings.local_model_path}: run `make llm` (or use --backend extractive).", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="policylab-bench-browser-"))
    overrides = dict(POLICYLAB_LLM_BACKEND=args.backend, POLICYLAB_MODELS_DIR=str(settings.models_path.resolve()),
                     POLICYLAB_LOCAL_MODEL=settings.local_model)
    server = Server(root / "data", overrides)
    try:
        server.data_dir.mkdir(parents=True)
        _prepare(root, server.env)
        server.start()
        url = server.url
        rss_idle = tree_rss_mb(server.process.pid)
        runs = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.fill("#email", "bench")
            page.fill("#password", "bench-password")
            page.click("button[type=submit]")
            page.wait_for_selector("#chat-settings-open-modal")
            for number, question in enumerate(QUESTIONS[: args.questions]):
                page.evaluate(MEASURE_JS)
                page.fill("#chat-input", question)
                page.press("#chat-input", "Enter")
                page.wait_for_function("([text, n]) => document.body.innerText.split(text).length - 1 > n",
                                       arg=[DONE, number], timeout=900_000)
                timing = page.evaluate("() => window.__timing")
                runs.append({"question": question, "first_source_s": timing.get("sources", 0) / 1000,
                             "first_token_s": timing.get("token", 0) / 1000})
                print(f"  {runs[-1]}", file=sys.stderr)
            browser.close()
        rss = tree_rss_mb(server.process.pid)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    print("\n| backend | questions | first source shown, median (max) | first answer token, median (max) | app memory idle → after answers |")
    print("|---|---|---|---|---|")
    print(f"| {args.backend} ({settings.local_model if args.backend == 'local' else 'no model'}) | {len(runs)} | "
          f"{med('first_source_s'):.2f} s ({max(r['first_source_s'] for r in runs):.2f}) | "
          f"{med('first_token_s'):.1f} s ({max(r['first_token_s'] for r in runs):.1f}) | {rss_idle:.0f} → {rss:.0f} MB |")
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores: above ~2.5 the timings are disturbed)")
    if args.json_out:
        args.json_out.write_text(json.dumps({"backend": args.backend, "runs": runs, "rss_idle_mb": rss_idle,
                                             "rss_mb": rss}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
