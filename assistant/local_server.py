"""Lifecycle of a local llama.cpp model server (``llama_cpp.server``) for one GGUF file.

The server runs as a child process on a free loopback port, logs to a file, and dies with
its parent: ``python -m assistant.local_server --parent-pid PID -- <llama_cpp.server args>``
starts ``llama_cpp.server`` in-process next to a thread that exits when the parent is gone,
so a killed app does not leave a model in memory.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import ModelUnavailableError

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOG_ROTATE_BYTES = 5_000_000


def runtime_installed() -> bool:
    """Whether ``llama_cpp`` (the local runtime) can be imported in this environment."""
    return importlib.util.find_spec("llama_cpp") is not None


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _server_env() -> dict[str, str]:
    """The server's environment. OpenMP threads sleep instead of spinning while they wait
    (``OMP_WAIT_POLICY=PASSIVE``, unless set): with spinning, any other busy process on a 2-core
    machine (an ingest, a test run) cuts llama.cpp's decode speed about tenfold."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("" if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalLlamaServer:
    """Start, watch, restart and stop ``llama_cpp.server`` for ``model_path``.

    Use as a context manager, or call :meth:`start` / :meth:`stop`; :meth:`ensure_running`
    restarts a server that died. An ``atexit`` hook stops it when the interpreter exits.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
        alias: str = "local",
        port: int | None = None,
        verbose: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.log_path = Path(log_path) if log_path else Path("data/logs/llama-server.log")
        self.startup_timeout = startup_timeout
        self.alias = alias
        self.port = port
        self.verbose = verbose
        self.extra_args = tuple(extra_args)
        self.load_seconds: float | None = None  # time from spawn to healthy, last start
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._atexit_registered = False

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: object) -> LocalLlamaServer:
        """A server for ``settings.local_model_path`` with the context and threads from settings."""
        return cls(
            settings.local_model_path,
            n_ctx=settings.llm_context,
            n_threads=settings.llm_threads,
            log_path=settings.logs_dir / "llama-server.log",
            **kwargs,  # type: ignore[arg-type]
        )

    # -- state -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. ``http://127.0.0.1:41234/v1`` (the port is chosen on first start)."""
        if self.port is None:
            self.port = free_port()
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Whether the server process is alive (it may still be loading)."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Spawn the server and wait until it answers ``GET /v1/models``; raise ``ModelUnavailableError`` if it does not."""
        with self._lock:
            if self.is_running():
                return
            self._check_installed()
            if self.port is None or not _port_free(self.port):
                self.port = free_port()
            self._rotate_log()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            cmd = self._command()
            with self.log_path.open("ab") as logf:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                logf.write(f"\n==== {stamp} starting: {' '.join(cmd)}\n".encode())
                logf.flush()
                started = time.monotonic()
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=_server_env()
                )
            self.starts += 1
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
            log.info("Starting local model server for %s on port %s (pid %s)", self.model_path.name, self.port, self._proc.pid)
            try:
                self._wait_healthy()
            except BaseException:
                self.stop()
                raise
            self.load_seconds = time.monotonic() - started
            log.info("Local model server ready in %.1f s at %s", self.load_seconds, self.base_url)

    def ensure_running(self) -> bool:
        """Start the server if it is not running (first use, or after a crash). Return True if it was (re)started."""
        with self._lock:
            if self.is_running():
                return False
            if self._proc is not None:
                log.warning(
                    "Local model server (pid %s) exited with code %s; restarting it. Log: %s",
                    self._proc.pid, self._proc.returncode, self.log_path,
                )
                self._proc = None
            self.start()
            return True

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server, then kill it if it has not exited within ``timeout`` seconds."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Local model server (pid %s) ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> LocalLlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------

    def _check_installed(self) -> None:
        if not runtime_installed():
            raise ModelUnavailableError(
                "The local model runtime (llama-cpp-python) is not installed. Run `make llm-runtime`, "
                "or point POLICYLAB_LLM_BASE_URL at a running OpenAI-compatible server.",
                kind="not_installed", retryable=False,
            )
        if not self.model_path.is_file():
            raise ModelUnavailableError(
                f"The local model file {self.model_path} does not exist. Run `make model` "
                "(or `make model LLM_MODEL=smollm2-135m`), or set POLICYLAB_LOCAL_MODEL.",
                kind="not_installed", retryable=False,
            )

    def _command(self) -> list[str]:
        args = [
            "--model", str(self.model_path),
            "--host", HOST,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--model_alias", self.alias,
            "--interrupt_requests", "False",  # queue concurrent requests instead of cutting the running answer off
            # The server's default keeps logits for every prompt token (n_ctx × vocabulary floats: 2.5 GB for
            # Qwen2.5) and computes them all; nothing here uses logprobs. `eval.bench_llm` on 2 cores with the
            # 1.5B model: server RSS 3.0 → 2.07 GB, prompt read 42 → 73 tokens/s (docs/models.md).
            "--logits_all", "False",
            "--flash_attn", "True",
            "--verbose", str(self.verbose),
            *self.extra_args,
        ]
        return [sys.executable, "-m", "assistant.local_server", "--parent-pid", str(os.getpid()), "--", *args]

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise self._startup_error(f"exited with code {code} while loading")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    json.loads(resp.read())
                    return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.2)
        raise self._startup_error(f"did not answer {url} within {self.startup_timeout:g} s")

    def _startup_error(self, what: str) -> ModelUnavailableError:
        tail = log_tail(self.log_path)
        hint = ""
        if self._proc is not None and self._proc.returncode in (-signal.SIGSEGV, -signal.SIGILL):
            hint = (" A crash signal usually means llama-cpp-python was built for CPU features this machine "
                    "cannot use (e.g. AMX): rebuild it with `make llm-runtime`.")
        return ModelUnavailableError(
            f"The local model server for {self.model_path.name} {what}.{hint} Last lines of {self.log_path}:\n{tail}",
            kind="connection", retryable=False,
        )

    def _rotate_log(self) -> None:
        try:
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_suffix(self.log_path.suffix + ".1"))
        except OSError:
            pass


def _exit_with_parent(parent_pid: int) -> None:
    """Exit this process as soon as ``parent_pid`` is no longer its parent."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def _serve(argv: list[str]) -> None:
    """``--parent-pid PID -- <llama_cpp.server args>``: run llama_cpp.server here, tied to the parent."""
    import runpy

    if len(argv) >= 3 and argv[0] == "--parent-pid" and argv[2] == "--":
        threading.Thread(target=_exit_with_parent, args=(int(argv[1]),), daemon=True).start()
        argv = argv[3:]
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _serve(sys.argv[1:])
