"""Chat model backends behind one small interface: ``ChatModel.stream``.

- :class:`OpenAICompatibleModel`: any OpenAI-compatible server (``POLICYLAB_LLM_BASE_URL``).
- :class:`LocalChatModel`: a llama.cpp server this process starts for a GGUF file, restarted after a crash.
- :func:`select_model`: the backend the settings ask for, or ``None`` for extractive answers.

Failures before the first token (429, 5xx, timeouts, refused connections) are retried with bounded
exponential backoff; once tokens have been streamed a failure is raised, never retried silently.
Every failure surfaces as :class:`~assistant.errors.ModelUnavailableError` with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx
import httpx2
import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from assistant.errors import ModelFailure, ModelUnavailableError

if TYPE_CHECKING:
    from assistant.local_server import LocalLlamaServer
    from assistant.settings import Settings

log = logging.getLogger(__name__)

Message = dict[str, Any]
_TIMEOUTS = (httpx2.TimeoutException, httpx.TimeoutException)
_TRANSPORT = (httpx2.TransportError, httpx.TransportError)
_RETRY_STATUS = {408, 409, 429}


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: ``stream`` yields the answer's text pieces as they are generated.

    (Declared with ``def``: implementations are ``async def`` generators, which type-check as this.)
    """

    name: str

    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.1, stop: list[str] | None = None
    ) -> AsyncIterator[str]: ...


async def complete(model: ChatModel, messages: list[Message], **kw: Any) -> str:
    """The whole answer of ``model.stream(messages, **kw)`` as one string."""
    return "".join([piece async for piece in model.stream(messages, **kw)])


class _Attempt(Exception):
    """One failed attempt, classified; the last one becomes the ModelUnavailableError."""

    def __init__(self, kind: ModelFailure, retryable: bool, detail: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(detail)
        self.kind: ModelFailure = kind
        self.retryable = retryable
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


def _classify(exc: BaseException) -> _Attempt:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _short(_error_text(exc))
        if status == 429:
            return _Attempt("rate_limited", True, detail, status, _retry_after(exc))
        if status >= 500 or status in _RETRY_STATUS:
            return _Attempt("server_error", True, detail, status)
        return _Attempt("rejected", False, detail, status)
    if isinstance(exc, (openai.APITimeoutError, *_TIMEOUTS)):
        return _Attempt("timeout", True, "timed out")
    if isinstance(exc, (openai.APIConnectionError, *_TRANSPORT, ConnectionError)):
        return _Attempt("connection", True, _connection_detail(exc))
    if isinstance(exc, openai.APIError):  # an error event inside the stream, before any token
        return _Attempt("server_error", True, _short(str(exc)))
    raise exc


def _connection_detail(exc: BaseException) -> str:
    """'connection refused' / 'connection reset' when the chain of causes says so, else the innermost message."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    innermost = exc
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
        innermost = item
        stack += [item.__cause__, item.__context__, *getattr(item, "exceptions", ())]
    return _short(str(innermost) or type(innermost).__name__)


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return exc.message


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return (getattr(delta, "content", None) or "") if delta is not None else ""


class OpenAICompatibleModel:
    """Streaming chat completions from an OpenAI-compatible server (``openai.AsyncOpenAI``).

    ``max_retries`` counts retries after the first attempt; the wait between attempts doubles from
    ``backoff_initial`` up to ``backoff_max`` seconds (with jitter; a 429's Retry-After is honoured up to
    ``backoff_max``). ``advice`` ends the connection and server-error messages.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str = "not-needed",
        model: str = "local",
        timeout: float = 120.0,
        max_retries: int = 3,
        *,
        name: str | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        advice: str = "Check that it is running or set POLICYLAB_LLM_BASE_URL.",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.name = name or f"{model}@{self.base_url}"
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.advice = advice
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _get_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:  # an httpx pool belongs to one event loop
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _wait(self, state: RetryCallState) -> float:
        delay = min(self.backoff_max, self.backoff_initial * 2.0 ** (state.attempt_number - 1))
        delay *= 0.5 + random.random() / 2
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Attempt) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self.backoff_max))
        return delay

    async def _open(self, request: dict[str, Any]) -> tuple[Any, AsyncIterator[Any], str]:
        """Open the stream and read up to the first piece of text; a failure here is an ``_Attempt``."""
        try:
            stream = await self._get_client().chat.completions.create(**request)
        except Exception as exc:
            raise _classify(exc) from exc
        chunks = stream.__aiter__()
        try:
            while True:
                text = _delta_text(await chunks.__anext__())
                if text:
                    return stream, chunks, text
        except StopAsyncIteration:
            return stream, chunks, ""
        except Exception as exc:
            await stream.close()
            raise _classify(exc) from exc

    async def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.1, stop: list[str] | None = None
    ) -> AsyncIterator[str]:
        request: dict[str, Any] = {
            "model": self.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
        }
        if stop:
            request["stop"] = stop
        tried = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception(lambda e: isinstance(e, _Attempt) and e.retryable),
                before_sleep=self._log_retry,
                reraise=True,
            ):
                with attempt:
                    tried += 1
                    stream, chunks, first = await self._open(request)
        except _Attempt as failed:
            raise self._unavailable(failed, tried) from failed.__cause__
        if not first:
            await stream.close()
            return
        produced = 0
        try:
            yield first
            produced += 1
            async for chunk in chunks:
                text = _delta_text(chunk)
                if text:
                    yield text
                    produced += 1
        except Exception as exc:
            if not isinstance(exc, (openai.APIError, *_TIMEOUTS, *_TRANSPORT, ConnectionError)):
                raise
            reason = _classify(exc).detail
            raise ModelUnavailableError(
                f"The model server at {self.base_url} stopped after {produced} pieces of the answer ({reason}). "
                "The answer is incomplete: ask again.",
                kind="interrupted", retryable=True, attempts=1,
            ) from exc
        finally:
            await stream.close()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        detail = f"{exc.kind}: {exc.detail}" if isinstance(exc, _Attempt) else repr(exc)
        log.warning("Model server %s, attempt %d failed (%s); retrying", self.base_url, state.attempt_number, detail)

    def _unavailable(self, failed: _Attempt, tried: int) -> ModelUnavailableError:
        where = f"The model server at {self.base_url}"
        times = f"{tried} attempt{'s' if tried != 1 else ''}"
        if failed.kind == "rate_limited":
            msg = (f"{where} is rate-limiting requests (HTTP 429: rate limit) and still was after {times}. "
                   "Wait a minute and ask again, or use a server with a higher limit (POLICYLAB_LLM_BASE_URL).")
        elif failed.kind == "server_error":
            status = f"HTTP {failed.status}" if failed.status else "error"
            msg = f"{where} did not answer after {times} ({status}: {failed.detail}). {self.advice}"
        elif failed.kind == "timeout":
            msg = (f"{where} did not answer within {self.timeout:g} s ({times}, timeout). It may be overloaded or the "
                   "model too slow for this machine: raise POLICYLAB_LLM_TIMEOUT or use a smaller model.")
        elif failed.kind == "connection":
            msg = f"Could not connect to the model server at {self.base_url} after {times} ({failed.detail}). {self.advice}"
        else:
            msg = f"{where} rejected the request (HTTP {failed.status}: {failed.detail}). {_rejection_advice(failed.status, self.model)}"
        return ModelUnavailableError(msg, kind=failed.kind, retryable=failed.retryable, status=failed.status, attempts=tried)


def _rejection_advice(status: int | None, model: str) -> str:
    if status in (401, 403):
        return "Set POLICYLAB_LLM_API_KEY to a key this server accepts."
    if status == 404:
        return f"Set POLICYLAB_LLM_MODEL to a model it serves (now {model!r}) and check POLICYLAB_LLM_BASE_URL."
    return "The prompt may be too long for the model's context, or a parameter unsupported by this server."


class LocalChatModel:
    """An :class:`OpenAICompatibleModel` on a :class:`LocalLlamaServer` that it starts and restarts.

    Each request first makes sure the server process is alive (starting it on first use or after a
    crash); a connection failure before the first token restarts it once more and retries.
    """

    runs_on_cpu = True  # reads prompts slowly: the answer engine sends passage excerpts

    def __init__(self, server: LocalLlamaServer, *, timeout: float = 120.0, max_retries: int = 3, backoff_initial: float = 0.5) -> None:
        self.server = server
        self.name = f"local:{server.model_path.stem}"
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self._inner: OpenAICompatibleModel | None = None

    def _model(self) -> OpenAICompatibleModel:
        url = self.server.base_url
        if self._inner is None or self._inner.base_url != url:  # a restart may move the port
            self._inner = OpenAICompatibleModel(
                url, model=self.server.alias, timeout=self.timeout, max_retries=self.max_retries,
                name=self.name, backoff_initial=self.backoff_initial,
                advice=f"The local model server may have crashed: see {self.server.log_path}.",
            )
        return self._inner

    async def start(self) -> None:
        """Start the server now (e.g. at app start-up) instead of on the first request."""
        await asyncio.to_thread(self.server.ensure_running)

    async def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.1, stop: list[str] | None = None
    ) -> AsyncIterator[str]:
        await asyncio.to_thread(self.server.ensure_running)
        for retry in (False, True):
            produced = False
            try:
                async for piece in self._model().stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop):
                    produced = True
                    yield piece
                return
            except ModelUnavailableError as exc:
                if produced or retry or exc.kind != "connection":
                    raise
                log.warning("Local model server unreachable (%s); restarting it once", exc)
                await asyncio.to_thread(self._restart)

    def _restart(self) -> None:
        if self.server.is_running():
            self.server.stop()
        self.server.ensure_running()

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()
        await asyncio.to_thread(self.server.stop)


def select_model(settings: Settings) -> ChatModel | None:
    """The chat model the settings ask for, or ``None`` for the extractive (no-LLM) backend.

    ``llm_base_url`` set → OpenAI-compatible; else backend ``local``/``auto`` with the runtime and the
    GGUF file installed → a local server (started on first use). ``auto`` falls back to ``None``;
    an explicit ``openai`` or ``local`` that cannot work raises ``ModelUnavailableError``.
    """
    from assistant.local_server import LocalLlamaServer, runtime_installed

    backend = settings.llm_backend
    if backend == "extractive":
        return None
    if settings.llm_base_url and backend in ("auto", "openai"):
        return OpenAICompatibleModel(
            settings.llm_base_url, settings.llm_api_key, settings.llm_model,
            timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
        )
    if backend == "openai":
        raise ModelUnavailableError(
            "POLICYLAB_LLM_BACKEND is `openai` but POLICYLAB_LLM_BASE_URL is not set: set it to the server's /v1 URL.",
            kind="config", retryable=False,
        )
    path = settings.local_model_path
    if runtime_installed() and path.is_file():
        server = LocalLlamaServer.from_settings(settings)
        return LocalChatModel(server, timeout=settings.llm_timeout, max_retries=settings.llm_max_retries)
    why = ("llama-cpp-python is not installed (run `make llm-runtime`)" if not runtime_installed()
           else f"{path} does not exist (run `make model`)")
    if backend == "local":
        raise ModelUnavailableError(f"POLICYLAB_LLM_BACKEND is `local` but {why}.", kind="not_installed", retryable=False)
    log.info("No chat model: %s; answers will be extractive.", why)
    return None
