"""User-facing messages in several languages (from ``prompts/messages.json``)."""

from __future__ import annotations

import json
from functools import lru_cache

from assistant.prompts import PROMPTS_DIR


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    return json.loads((PROMPTS_DIR / "messages.json").read_text(encoding="utf-8"))


def message(key: str, language: str = "en", **values: object) -> str:
    """The message ``key`` in ``language`` (English when there is no translation)."""
    texts = _messages()[key]
    return texts.get(language, texts["en"]).format(**values)
