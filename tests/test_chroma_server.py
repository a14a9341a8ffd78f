"""Chroma in server mode against a real ``chroma run``: ingest, search, an outage, and recovery."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from assistant.answer import AnswerEngine, AnswerRequest
from assistant.retrieval import Retriever
from conftest import KNOWLEDGE, REPO, make_settings
from ingest.library import Library
from ingest.pipeline import ingest_paths
from ingest.vectors import VectorStoreUnavailable

pytestmark = pytest.mark.slow

CHROMA = REPO / ".venv" / "bin" / "chroma"
POLICYLAB = REPO / ".venv" / "bin" / "policylab"
HOST = "127.0.0.1"
WVR = "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"
HAGUE = "hague-1954-convention-cultural-property-armed-conflict.md"
QUERY_WVR = "Leveraging cultural soft power to create an image of a confident, trustworthy, and responsible Vietnam"
QUESTION_WVR = "What role does culture play in Vietnam's diplomacy?"
QUERY_HAGUE = "buildings whose main and effective purpose is to preserve or exhibit the movable cultural property"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ChromaServer:
    """A ``chroma run`` process on a fixed path and port that can be stopped and started again."""

    def __init__(self, path: Path, port: int, log: Path) -> None:
        self.path, self.port, self.log = path, port, log
        self.process: subprocess.Popen | None = None

    def start(self, deadline_s: float = 120) -> None:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", HOST, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        self._wait_for_heartbeat(deadline_s)

    def _wait_for_heartbeat(self, deadline_s: float) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        deadline = time.monotonic() + deadline_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                client = chromadb.HttpClient(host=HOST, port=self.port, settings=ChromaSettings(anonymized_telemetry=False))
                client.heartbeat()
                return
            except Exception as exc:  # not listening yet
                last_error = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer within {deadline_s} s ({last_error!r}):\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.process = None

    def refuses_connections(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex((HOST, self.port)) != 0


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server", free_port(), tmp_path / "chroma-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _excerpt(name: str, paragraphs: int) -> str:
    text = (KNOWLEDGE / name).read_text(encoding="utf-8")
    return "\n\n".join([p.strip() for p in text.split("\n\n") if p.strip()][:paragraphs]) + "\n"


def test_server_mode_ingest_search_outage_and_recovery(tmp_path, chroma_server):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / WVR).write_text(_excerpt(WVR, 6), encoding="utf-8")
    (docs / HAGUE).write_text(_excerpt(HAGUE, 9), encoding="utf-8")
    settings = make_settings(tmp_path / "data", chroma_mode="server", chroma_host=HOST, chroma_port=chroma_server.port)

    results = ingest_paths([docs], settings)

    assert {r.source_file: r.status for r in results} == {WVR: "indexed", HAGUE: "indexed"}
    assert not settings.chroma_dir.exists(), "server mode must not write an embedded Chroma store"
    lib = Library.open(settings)
    assert lib.vectors.count() == lib.store.counts()[1] > 0
    retriever = Retriever(settings)
    assert retriever.search(QUERY_WVR, k=3)[0].source_file == WVR
    engine = AnswerEngine(settings, retriever, model=None)  # the app's answer path on the same retriever
    assert retriever.search(QUERY_HAGUE, k=3)[0].source_file == HAGUE

    # Outage: every path that needs the vectors says where Chroma was expected and what to do.
    chroma_server.stop()
    assert chroma_server.refuses_connections()
    address = f"{HOST}:{chroma_server.port}"
    with pytest.raises(VectorStoreUnavailable) as during_search:
        retriever.search(QUERY_WVR, k=3)
    assert address in str(during_search.value) and "chroma run" in str(during_search.value)
    with pytest.raises(VectorStoreUnavailable) as on_open:
        Library.open(settings)
    message = str(on_open.value)
    assert address in message and "chroma run" in message and "POLICYLAB_CHROMA_MODE=embedded" in message
    with pytest.raises(VectorStoreUnavailable):
        Retriever(settings)
    for _request in range(2):  # each request says it again (the app shows it with "try again in a moment")
        with pytest.raises(VectorStoreUnavailable) as during_answer:
            asyncio.run(engine.answer(AnswerRequest(QUESTION_WVR)))
        assert address in str(during_answer.value) and "Traceback" not in str(during_answer.value)

    env = {
        **os.environ, "POLICYLAB_DATA_DIR": str(settings.data_dir), "POLICYLAB_CHROMA_MODE": "server",
        "POLICYLAB_CHROMA_HOST": HOST, "POLICYLAB_CHROMA_PORT": str(chroma_server.port), "COLUMNS": "300",
    }
    run = subprocess.run(
        [str(POLICYLAB), "search", QUERY_WVR, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0
    assert address in " ".join(run.stderr.split()) and "Traceback" not in run.stderr, run.stderr

    # Recovery: the same server path and port again; the running retriever works without a restart.
    chroma_server.start()
    passages = retriever.search(QUERY_WVR, k=3)
    assert passages and passages[0].source_file == WVR
    fresh = Retriever(settings)
    assert fresh.search(QUERY_HAGUE, k=3)[0].source_file == HAGUE
    assert fresh.library.vectors.count() == fresh.library.store.counts()[1]
    answer = asyncio.run(engine.answer(AnswerRequest(QUESTION_WVR)))
    assert answer.citations and any(c.source_file == WVR for c in answer.citations)
