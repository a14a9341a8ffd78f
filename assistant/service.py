"""Wiring: build the retriever, the model backend and the answer engine from settings."""

from __future__ import annotations

from assistant.answer import AnswerEngine
from assistant.llm import select_model
from assistant.retrieval import Retriever
from assistant.settings import Settings


def build_engine(settings: Settings, retriever: Retriever | None = None) -> AnswerEngine:
    """An answer engine on the configured model (None → the extractive backend)."""
    model = select_model(settings)
    factory = (lambda: select_model(settings)) if model is None and settings.llm_backend == "auto" else None
    return AnswerEngine(settings, retriever or Retriever(settings), model, model_factory=factory)
