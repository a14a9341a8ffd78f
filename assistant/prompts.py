"""Prompt templates, loaded from ``prompts/`` and checked for their placeholders at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.settings import REPO_ROOT

PROMPTS_DIR = REPO_ROOT / "prompts"
NOT_IN_LIBRARY = "NOT_IN_LIBRARY"  # the one sentinel shared by prompts, code and tests
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

REQUIRED = {
    "rules": {"not_in_library", "language"},
    "ask": {"rules", "passages", "question", "language"},
    "brief": {"rules", "passages", "question", "language"},
    "draft": {"rules", "passages", "question", "language"},
    "synthesis": {"rules", "passages", "question", "language", "contributions"},
    "rewrite": {"rules", "history", "question"},  # rules first: the same prompt start as answers, which the model server keeps
    "search_query": {"rules", "question", "target"},  # rules first, as for "rewrite"
    "translate": {"text", "language"},
    "revise": {"rules", "passages", "question", "language", "section", "current", "author"},
}


class PromptError(RuntimeError):
    """A prompt file is missing or lacks a placeholder the code fills."""


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str

    def render(self, **values: str) -> str:
        """Fill ``{name}`` placeholders; other braces in the text are left alone."""
        missing = set(PLACEHOLDER.findall(self.template)) - set(values)
        if missing:
            raise PromptError(f"Prompt {self.name!r} needs values for: {', '.join(sorted(missing))}")
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.template)


def load_prompt(name: str, folder: Path = PROMPTS_DIR) -> Prompt:
    path = folder / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"Prompt file {path} is missing; restore it from the repository.")
    template = path.read_text(encoding="utf-8").strip() + "\n"
    found = set(PLACEHOLDER.findall(template))
    missing = REQUIRED.get(name, set()) - found
    if missing:
        raise PromptError(f"Prompt file {path} lacks the placeholders {', '.join(sorted('{' + m + '}' for m in missing))}.")
    return Prompt(name, template)


@lru_cache(maxsize=1)
def load_all(folder: Path = PROMPTS_DIR) -> dict[str, Prompt]:
    """Every prompt, checked (call at start-up so a broken prompt file fails early)."""
    return {name: load_prompt(name, folder) for name in REQUIRED}
