"""Run the reliability and security tests and write docs/reliability.md: ``python -m eval.reliability_report``
(``make reliability``).

The selection below names, for each row of the summary, the tests that prove it. They run with pytest one
file at a time (the machine is shared), each writing JUnit XML under ``reports/reliability/``; the outcome of
every test, the counts per category and the figures of the last load test (``reports/load/load_test.json``,
written by ``make load-test``) go into the document. ``--no-run`` rewrites the document from the XML files
of the last run; ``--browser`` adds the Chromium tests (slower).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
XML_DIR = REPO / "reports" / "reliability"
LOAD_JSON = REPO / "reports" / "load" / "load_test.json"
DOC = REPO / "docs" / "reliability.md"


@dataclass(frozen=True)
class Group:
    """One row of the summary: what is tried, and the tests (``file`` plus a ``-k`` expression) that try it."""

    category: str
    what: str
    file: str
    select: str = ""
    browser: bool = False


SELECTION = (
    Group("Inputs tried", "Bad files: corrupt, truncated, encrypted, image-only, empty, oversized, HTML as PDF/DOCX, binary",
          "tests/test_loaders.py", "bad_files or encrypted or scanned or image_only or size_is_checked"),
    Group("Inputs tried", "Text encodings and formats: cp1252, UTF-16, BOM/CRLF, HTML scripts and handlers, DOCX tables",
          "tests/test_loaders.py", "cp1252 or utf16 or utf8_bom or html_keeps or docx"),
    Group("Inputs tried", "Bad files next to good ones, size limit before reading, unsafe file names",
          "tests/test_pipeline.py", "bad_files or size_limit or private_upload"),
    Group("Inputs tried", "Upload names with `..`, path separators, absolute paths and non-Latin characters",
          "tests/test_reliability.py", "upload_names or dot_dot"),
    Group("Inputs tried", "Questions: empty, whitespace, emoji only, 100k characters, Markdown/HTML, 'ignore previous instructions'",
          "tests/test_reliability.py", "unusable or 100k or markdown_and_html or ignore_previous"),
    Group("Faults survived", "kill -9 of an ingest midway, then a re-run; two ingests at once (lock)",
          "tests/test_pipeline.py", "kill_9 or lock"),
    Group("Faults survived", "Model endpoint: 429, 500, timeouts, refused connections, failure mid-stream (bounded retries)",
          "tests/test_llm.py", "retries or rate_limit or server_error or timeout or connection or auth_failure or first_token"),
    Group("Faults survived", "Local llama.cpp server killed between and during answers, restarted, retry works",
          "tests/test_llm.py", "recovers_after_kill or startup_failure"),
    Group("Faults survived", "Local llama.cpp server killed mid-answer in the answer engine",
          "tests/test_reliability.py", "killed_mid_answer"),
    Group("Faults survived", "Chroma server down at start-up and per request, then back",
          "tests/test_chroma_server.py"),
    Group("Faults survived", "App refuses to start (exit 3) with the reason when Chroma is unreachable",
          "tests/test_cli.py", "cannot_start"),
    Group("Faults survived", "A chat whose socket is replaced before its first message (a reconnect, the page's second "
          "connect after login) starts again with its settings and commands",
          "tests/test_reliability.py", "socket_is_replaced"),
    Group("Faults survived", "Errors shown to users as readable messages; stop button discards unverified drafts",
          "tests/test_app_handlers.py", "errors_become_readable or stop_discards"),
    Group("Isolation and access", "20 concurrent socket users: own uploads, history and exports only",
          "tests/test_reliability.py", "twenty_concurrent"),
    Group("Isolation and access", "No anonymous route to chats, files, exports, documents or the socket",
          "tests/test_reliability.py", "anonymous"),
    Group("Isolation and access", "Passwords hashed with bcrypt; users file holds only hashes",
          "tests/test_app_handlers.py", "passwords or users_file or users_from or registry or local_storage"),
    Group("Isolation and access", "Two browser users: private upload isolation, thread listing, socket origin check, publishing "
          "(the whole module: its tests build on each other)", "tests/test_app_browser.py", browser=True),
    Group("Prompt injection and output", "Injected document with the extractive backend and with a model that obeys it",
          "tests/test_reliability.py", "injected or obeys or short_false_claim"),
    Group("Prompt injection and output", "Only verified citations are shown; Markdown in titles is escaped",
          "tests/test_app_handlers.py", "render"),
    Group("Prompt injection and output", "Citation verification: fabricated, changed numbers, out-of-range markers",
          "tests/test_citations.py"),
    Group("Prompt injection and output", "A `<script>`, inline handlers and `javascript:` links in a document never run in Chromium",
          "tests/test_security_browser.py", browser=True),
)


@dataclass
class Outcome:
    name: str
    outcome: str  # passed | failed | skipped | xfailed
    seconds: float
    detail: str = ""


def xml_path(index: int) -> Path:
    return XML_DIR / f"group-{index:02d}.xml"


def run_group(index: int, group: Group) -> int:
    """pytest for one group (one file), JUnit XML to :func:`xml_path`; returns pytest's exit status."""
    command = [sys.executable, "-m", "pytest", group.file, "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit2",
               f"--junitxml={xml_path(index)}"]
    if group.select:
        command += ["-k", group.select]
    print(f"[{index + 1}/{len(SELECTION)}] {group.what}\n    {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    print(f"    {tail}", flush=True)
    return done.returncode


def read_outcomes(path: Path) -> list[Outcome]:
    """Every test case of a JUnit XML file with its outcome (xfail reported as ``xfailed``)."""
    if not path.is_file():
        return []
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}".replace("tests/", "tests/", 1)
        seconds = float(case.get("time") or 0)
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            outcomes.append(Outcome(name, "failed", seconds, (failure.get("message") or "")[:200]))
        elif skipped is not None:
            kind = "xfailed" if "xfail" in (skipped.get("type") or "") else "skipped"
            outcomes.append(Outcome(name, kind, seconds, (skipped.get("message") or "")[:200]))
        else:
            outcomes.append(Outcome(name, "passed", seconds))
    return outcomes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def load_section(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return ["No load-test figures yet: run `make load-test` (writes reports/load/load_test.json), then `make reliability`."]
    lines = [f"Last `make load-test`: {load.get('started', '?')} to {load.get('finished', '?')}, "
             f"{load.get('machine', {}).get('cpus', '?')} CPUs, load average at start "
             f"{load.get('machine', {}).get('load_avg_at_start', '?')} (the machine is shared, so latencies vary between runs).", ""]
    ex = load.get("extractive")
    if ex:
        lat, rss = ex["latency_s"], ex["rss_mb"]
        lines += [
            "| Run 1: the app's own overhead (extractive backend) | |",
            "|---|---|",
            f"| Concurrent chats × duration | {ex['users']} × {ex['seconds']:.0f} s (warm-up {ex['warmup_s']:.0f} s not timed) |",
            f"| Questions | {ex.get('distinct_questions', '?')} distinct, asked in turn (a question comes back every few answers) |",
            f"| Requests / errors | {ex['requests']} / **{ex['errors']}** |",
            f"| Throughput | {ex['answers_per_s']} answers/s |",
            f"| Latency p50 / p95 / max | {lat['p50']} s / **{lat['p95']} s** / {lat['max']} s ({lat['timed_requests']} timed) |",
            f"| Server RSS start → after warm-up → end (peak) | {rss['start']} → {rss['after_warmup']} → {rss['end']} MB ({rss['peak']} MB) |",
            f"| Memory growth after warm-up | **{rss['growth_pct_after_warmup']} %** (target: under 10 %"
            f"{'; not met' if rss['growth_pct_after_warmup'] >= 10 else '; met'}) |",
            "",
        ]
        lines += [f"- error: {_cell(e)}" for e in ex.get("error_samples", [])]
    model = load.get("model", {})
    if "skipped" in model:
        lines.append(f"Run 2 (embedded model) skipped: {model['skipped']}.")
    elif model:
        lines += [
            f"| Run 2: {model['users']} questions at once on {model['model']} | |",
            "|---|---|",
            f"| Completed / lost or failed | {model['completed']} / **{model['lost_or_failed']}** |",
            f"| Completion times (users in order) | {', '.join(f'{s} s' for s in model['done_s'])} ({model['completion_order']}) |",
            "",
        ]
    return lines


def render(outcomes: dict[int, list[Outcome]], load: dict[str, Any] | None, browser: bool) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    lines = [
        "# Reliability: inputs tried, faults survived, load held",
        "",
        f"*Generated by `make reliability` (`python -m eval.reliability_report`) on {time.strftime('%Y-%m-%d %H:%M')} "
        f"at commit {commit or '?'} plus the working tree. Do not edit by hand: re-run the command.*",
        "",
        "Every row is a set of real tests (real files, embedder, Chroma, llama.cpp server, `policylab serve`, Chromium); "
        "the threat model and what each test covers are in [security.md](security.md).",
        "",
        "## Summary",
        "",
        "| Category | What is tried | Tests | Passed | Failed | Skipped | Known gaps (xfail) |",
        "|---|---|---|---|---|---|---|",
    ]
    totals: dict[str, list[int]] = {}
    for index, group in enumerate(SELECTION):
        found = outcomes.get(index, [])
        counts = [sum(o.outcome == k for o in found) for k in ("passed", "failed", "skipped", "xfailed")]
        if not found:
            status = ["not run" + (" (browser)" if group.browser else "")] + [""] * 3
        else:
            status = [str(c) for c in counts]
        lines.append(f"| {group.category} | {_cell(group.what)} | {len(found)} | " + " | ".join(status) + " |")
        total = totals.setdefault(group.category, [0, 0, 0, 0, 0])
        total[0] += len(found)
        for i, c in enumerate(counts):
            total[i + 1] += c
    lines += ["", "| Category | Tests | Passed | Failed | Skipped | Known gaps |", "|---|---|---|---|---|---|"]
    lines += [f"| {cat} | " + " | ".join(str(x) for x in t) + " |" for cat, t in totals.items()]
    lines += ["", "## Load held", ""] + load_section(load)
    lines += ["", "## Every test and its outcome", ""]
    for index, group in enumerate(SELECTION):
        found = outcomes.get(index, [])
        lines += [f"### {group.category}: {group.what}", "",
                  f"`{group.file}`" + (f" (`-k \"{group.select}\"`)" if group.select else ""), ""]
        if not found:
            lines += ["Not run in this report (Chromium tests: `make reliability RELIABILITY_ARGS=--browser`)." if group.browser
                      else "No result (the tests did not run).", ""]
            continue
        lines += ["| Test | Outcome | Seconds | Note |", "|---|---|---|---|"]
        lines += [f"| `{_cell(o.name.split('::', 1)[-1])}` | {o.outcome} | {o.seconds:.1f} | {_cell(o.detail)} |" for o in found]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-run", action="store_true", help="only rewrite the document from the last run's XML files")
    parser.add_argument("--browser", action="store_true", help="also run the Chromium tests")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    XML_DIR.mkdir(parents=True, exist_ok=True)
    failed = False
    if not args.no_run:
        for index, group in enumerate(SELECTION):
            if group.browser and not args.browser:
                xml_path(index).unlink(missing_ok=True)
                continue
            failed |= run_group(index, group) not in (0, 5)  # 5: nothing selected
    outcomes = {i: read_outcomes(xml_path(i)) for i in range(len(SELECTION))}
    load = json.loads(LOAD_JSON.read_text()) if LOAD_JSON.is_file() else None
    args.out.write_text(render(outcomes, load, args.browser or any(outcomes[i] for i, g in enumerate(SELECTION) if g.browser)),
                        encoding="utf-8")
    failures = [o.name for found in outcomes.values() for o in found if o.outcome == "failed"]
    print(f"Wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}: "
          f"{sum(len(f) for f in outcomes.values())} tests, {len(failures)} failed")
    return 1 if failed or failures else 0


if __name__ == "__main__":
    sys.exit(main())
