"""The ``policylab`` command line, run as a user runs it: a real process on a small real library."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import KNOWLEDGE, REPO

POLICYLAB = REPO / ".venv" / "bin" / "policylab"
WVR = "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"
UNESCO_1970 = "unesco-1970-convention-illicit-traffic-cultural-property.md"
LIBRARY_KEYS = {"title", "publisher", "year", "doc_type", "language", "source_file", "content_hash"}
PASSAGE_KEYS = {"text", "source_file", "title", "page", "score"}
QUERY_1970 = "prohibiting the illicit import, export and transfer of ownership of cultural property"
QUERY_VIETNAM = "Vietnam cultural soft power in comprehensive diplomacy"


def policylab(args: list[str], data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # A wide terminal so that Rich does not fold file names inside the table cells.
    env = {**os.environ, "POLICYLAB_DATA_DIR": str(data_dir), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(POLICYLAB), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=data_dir.parent
    )


def squash(text: str) -> str:
    return " ".join(text.split())


def _excerpt(name: str, stop: str | None = None, paragraphs: int | None = None) -> str:
    text = (KNOWLEDGE / name).read_text(encoding="utf-8")
    if stop is not None:
        text = text[: text.index(stop)]
    if paragraphs is not None:
        text = "\n\n".join([p.strip() for p in text.split("\n\n") if p.strip()][:paragraphs])
    return text.rstrip() + "\n"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Small copies of two knowledge files (with the catalog beside them) ingested by the CLI once."""
    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    docs.mkdir()
    (docs / WVR).write_text(_excerpt(WVR, paragraphs=6), encoding="utf-8")
    (docs / UNESCO_1970).write_text(_excerpt(UNESCO_1970, stop="### Article 2"), encoding="utf-8")
    shutil.copy(KNOWLEDGE / "catalog.json", docs / "catalog.json")
    data_dir = root / "data"
    run = policylab(["ingest", str(docs)], data_dir)
    return docs, data_dir, run


def search_json(data_dir: Path, *args: str) -> list[dict]:
    run = policylab(["search", *args, "--json"], data_dir)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_ingest_prints_a_summary_table_and_exits_0(library):
    docs, _, run = library
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    for word in ("pages", "chunks", "status", WVR, UNESCO_1970):
        assert word in out, (word, out)
    assert out.count("indexed") >= 2
    assert "catalog.json" not in out
    assert "2 indexed, 0 unchanged, 0 failed" in squash(out)


def test_ingest_exits_1_when_any_file_failed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(_excerpt(WVR, paragraphs=2), encoding="utf-8")
    (docs / "empty.txt").write_bytes(b"")
    run = policylab(["ingest", str(docs)], tmp_path / "data")
    assert run.returncode == 1, run.stdout + run.stderr
    for word in ("good.txt", "empty.txt", "pages", "chunks", "status", "indexed", "failed", "empty file"):
        assert word in run.stdout, (word, run.stdout)
    assert "1 indexed, 0 unchanged, 1 failed" in squash(run.stdout)


def test_search_json_lists_passages_with_their_source(library):
    _, data_dir, _ = library
    passages = search_json(data_dir, QUERY_1970, "-k", "3")
    assert 1 <= len(passages) <= 3
    for p in passages:
        assert PASSAGE_KEYS <= set(p), set(p)
        assert p["text"].strip() and isinstance(p["score"], float) and p["page"] is None
    assert passages[0]["source_file"] == UNESCO_1970
    assert passages[0]["title"].startswith("Convention on the Means of Prohibiting")


def test_search_filter_country_restricts_to_the_vietnam_document(library):
    _, data_dir, _ = library
    unfiltered = search_json(data_dir, QUERY_1970, "-k", "5")
    assert UNESCO_1970 in {p["source_file"] for p in unfiltered}  # the filter has something to remove
    passages = search_json(data_dir, QUERY_1970, "-k", "5", "--filter", "country=Vietnam")
    assert passages
    assert {p["source_file"] for p in passages} == {WVR}
    assert all(p["country"] == "Vietnam" for p in passages)


def test_search_year_range_restricts_to_documents_of_those_years(library):
    _, data_dir, _ = library
    unfiltered = search_json(data_dir, QUERY_VIETNAM, "-k", "5")
    assert WVR in {p["source_file"] for p in unfiltered}
    passages = search_json(data_dir, QUERY_VIETNAM, "-k", "5", "--year", "1950:1975")
    assert passages
    assert {p["source_file"] for p in passages} == {UNESCO_1970}
    assert all(1950 <= p["year"] <= 1975 for p in passages)
    assert search_json(data_dir, QUERY_VIETNAM, "--year", "1980:1990") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--filter", "nonsense"], "must look like key=value"),
        (["--filter", "planet=Mars"], "Unknown filter 'planet'"),
        (["--year", "last-year"], "must look like 2020:2026"),
    ],
)
def test_search_bad_filter_exits_non_zero_with_a_clear_message(library, options, message):
    _, data_dir, _ = library
    run = policylab(["search", "culture", *options], data_dir)
    assert run.returncode != 0
    assert message in squash(run.stderr), run.stderr
    assert "Traceback" not in run.stderr


def test_library_json_lists_documents_with_catalog_metadata(library):
    docs, data_dir, _ = library
    run = policylab(["library", "--json"], data_dir)
    assert run.returncode == 0, run.stderr
    entries = {d["source_file"]: d for d in json.loads(run.stdout)}
    assert set(entries) == {WVR, UNESCO_1970}
    for name, entry in entries.items():
        assert LIBRARY_KEYS <= set(entry), set(entry)
        assert entry["content_hash"] == hashlib.sha256((docs / name).read_bytes()).hexdigest()
        assert entry["language"] == "en" and entry["chunks"] > 0
    wvr = entries[WVR]
    assert wvr["title"] == "Culture - The pillar of comprehensive diplomacy at a new height"
    assert wvr["publisher"] == "World and Vietnam Report (WVR)"
    assert wvr["year"] == 2026 and wvr["country"] == "Vietnam"
    assert wvr["doc_type"] == "article on national diplomacy strategy"
    assert entries[UNESCO_1970]["year"] == 1970


def test_remove_unknown_document_exits_non_zero_with_a_message(library):
    _, data_dir, _ = library
    run = policylab(["remove", "unknown.pdf"], data_dir)
    assert run.returncode != 0
    assert "No document 'unknown.pdf'" in squash(run.stderr), run.stderr
    listing = policylab(["library", "--json"], data_dir)
    assert len(json.loads(listing.stdout)) == 2  # nothing else was removed


def test_serve_exits_with_the_reason_when_the_app_cannot_start(tmp_path, monkeypatch):
    """A server that cannot answer (here: its Chroma server is down) stops instead of looking healthy."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port, app_port = s.getsockname()[1], None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        app_port = s.getsockname()[1]
    monkeypatch.setenv("POLICYLAB_CHROMA_MODE", "server")
    monkeypatch.setenv("POLICYLAB_CHROMA_PORT", str(dead_port))
    run = policylab(["serve", "--port", str(app_port)], tmp_path / "data", timeout=180)
    assert run.returncode == 3, run.stdout + run.stderr
    assert f"Cannot reach the Chroma server at 127.0.0.1:{dead_port}" in run.stdout + run.stderr
