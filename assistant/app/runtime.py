"""The per-process singletons of the app (settings, answer engine, accounts), built at start-up, never at import."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from assistant.answer import AnswerEngine
from assistant.settings import REPO_ROOT, Settings, get_settings
from assistant.types import DocumentInfo

from assistant.app.auth import AccountRegistry
from assistant.app.datalayer import ensure_schema, install_routes, make_data_layer

STARTUP_FAILED = 3  # exit status of `policylab serve` when the app cannot start

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Shared by every session of the process; the engine and its retriever are thread-safe readers."""

    settings: Settings
    engine: AnswerEngine
    accounts: AccountRegistry

    @property
    def store(self):
        return self.engine.retriever.library.store

    def document(self, doc_id: str) -> DocumentInfo | None:
        return self.store.get(doc_id)

    def document_path(self, doc_id: str, username: str) -> Path | None:
        """The file of a complete document that ``username`` may see, or None."""
        info = self.store.get(doc_id)
        if info is None or info.status != "complete" or info.owner not in ("", username) or not info.path:
            return None
        path = Path(info.path)
        for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]):
            if candidate.is_file():
                return candidate
        return None

    def visible_documents(self, username: str) -> list[DocumentInfo]:
        return self.engine.retriever.library.documents(viewer=username)

    def role(self, username: str) -> str | None:
        account = self.accounts.current().get(username)
        return account.role if account else None


_state: AppState | None = None


def state() -> AppState:
    if _state is None:
        raise RuntimeError("The app has not started: run it with `policylab serve`.")
    return _state


async def startup() -> None:
    """Build the per-process singletons and warm the models up, before the first request."""
    global _state
    from assistant.service import build_engine
    from chainlit.data import get_data_layer
    from chainlit.server import app

    try:
        settings = get_settings()
        await ensure_schema(settings.history_url)
        engine = await asyncio.to_thread(build_engine, settings)
        _state = AppState(settings, engine, AccountRegistry(settings))
        await asyncio.to_thread(_warm_up, engine)
    except Exception as exc:  # a server that cannot answer must not sit there looking healthy
        log.critical("Policy Lab Assistant cannot start: %s", exc, exc_info=True)
        logging.shutdown()
        os._exit(STARTUP_FAILED)
    install_routes(app, get_data_layer(), _state.document_path)
    _restrict_socket_origins()
    log.info("Policy Lab Assistant ready: backend %s, %d documents", engine.backend, len(_state.visible_documents("")))
    task = asyncio.create_task(_prime(engine))
    _background.add(task)  # a reference, so the task is not collected before it ends
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


async def _prime(engine: AnswerEngine) -> None:
    """Start the model server and let it read the prompts' fixed start now, not on the first question."""
    try:
        await engine.prime()
        log.info("Chat model primed: %s", engine.backend)
    except Exception as exc:  # the first question will start it again and report what is wrong
        log.warning("Could not prime the chat model: %s", exc)


def _restrict_socket_origins() -> None:
    """Chainlit limits HTTP CORS to ``allow_origins`` but leaves its Socket.IO server open to any origin:
    apply the same list there, so another site's page cannot open a socket with the user's cookie."""
    from chainlit.config import config
    from chainlit.server import sio

    origins = list(config.project.allow_origins)
    if "*" not in origins:
        sio.eio.cors_allowed_origins = origins


def _warm_up(engine: AnswerEngine) -> None:
    from assistant.language import detect_language

    detect_language("Warm-up sentence for the language detector.")
    engine.embeddings.embed_query("warm-up")


async def shutdown() -> None:
    if _state is None:
        return
    close = getattr(_state.engine.model, "aclose", None)
    if close:
        await close()


def data_layer():
    settings = get_settings()
    return make_data_layer(settings.history_url, settings.data_dir / "app_files")
