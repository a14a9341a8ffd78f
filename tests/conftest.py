"""Shared fixtures: all state in temp dirs, no network beyond loopback, one real index per session."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval" / "dev.jsonl"
DEV_SET = SHARED_EVAL if SHARED_EVAL.is_file() else REPO / "eval" / "questions" / "dev.jsonl"
KNOWLEDGE = REPO / "knowledge"

sys.path.insert(0, str(Path(__file__).parent))  # tests import pdf_fixtures directly

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    else:
        return True  # unix sockets and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: not allowed


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch):
    """Fail any test that opens a connection to a non-loopback address."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkBlocked(f"test tried to reach {address!r}: only loopback is allowed")
        return real_connect(self, address)

    def guarded_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkBlocked(f"test tried to reach {address!r}: only loopback is allowed")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_ex)
    yield


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Every test gets its own data directory; the settings cache is reset around it."""
    from assistant.settings import get_settings

    monkeypatch.setenv("POLICYLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POLICYLAB_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def make_settings(data_dir: Path, **overrides):
    from assistant.settings import Settings

    return Settings(data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def default_index(tmp_path_factory) -> Path:
    """The default library (knowledge/) indexed once with the real embedder; returns its data dir."""
    from ingest.pipeline import ingest_paths

    data_dir = tmp_path_factory.mktemp("default-index")
    results = ingest_paths([KNOWLEDGE], make_settings(data_dir))
    failed = [r for r in results if r.failed]
    assert not failed, f"default library failed to index: {[(r.source_file, r.reason) for r in failed]}"
    return data_dir


@pytest.fixture(scope="session")
def default_retriever(default_index):
    from assistant.retrieval import Retriever

    return Retriever(make_settings(default_index))


def copy_index(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


class ScriptedModel:
    """A chat model that streams a fixed reply: unit-level control over what "the model" writes."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def stream(self, messages, max_tokens: int, temperature: float = 0.0):
        for piece in self.reply.split(" "):
            yield piece + " "


def prose_sentences(text: str) -> list[str]:
    """The passage's sentences of more than eight words, without headings or list numbers (what a model would quote)."""
    lines = [re.sub(r"^(\d+\.|\([a-z]\)|-)\s+", "", line.strip()) for line in text.splitlines() if not line.startswith("#")]
    return [s.strip() for line in lines for s in line.split(".") if len(s.split()) > 8]
