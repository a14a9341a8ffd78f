"""Evaluation metrics that do not depend on how documents are chunked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OVERLAP_HIT = 0.6  # share of the gold quote's words that a passage must contain to count as a hit


def normalise(text: str) -> str:
    """Whitespace collapsed, markdown emphasis and link brackets removed, lower case."""
    text = re.sub(r"[*_`]|\]\(#\)|\\", "", text)
    return " ".join(text.replace("[", "").split()).lower()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", normalise(text))


def contains_gold(passage_text: str, quote: str) -> bool:
    """A hit: the passage contains the quote, or substantially overlaps it (long quotes cut by a chunk edge)."""
    if normalise(quote) in normalise(passage_text):
        return True
    quote_words = _words(quote)
    if len(quote_words) < 8:
        return False
    text = " " + " ".join(_words(passage_text)) + " "
    # longest run of the quote's words found contiguously in the passage
    best = 0
    for start in range(len(quote_words)):
        for end in range(len(quote_words), start + best, -1):
            if " " + " ".join(quote_words[start:end]) + " " in text:
                best = max(best, end - start)
                break
    return best / len(quote_words) >= OVERLAP_HIT


@dataclass
class Question:
    id: str
    mode: str
    language: str
    question: str
    answerable: bool
    gold: list[dict[str, str]]
    must_mention: list[str]


def load_questions(path: Path) -> list[Question]:
    questions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            data: dict[str, Any] = json.loads(line)
            questions.append(Question(
                id=data["id"], mode=data.get("mode", "ask"), language=data.get("language", "en"),
                question=data["question"], answerable=bool(data.get("answerable", True)),
                gold=list(data.get("gold", [])), must_mention=list(data.get("must_mention", [])),
            ))
    return questions


def gold_ranks(passages: Sequence[tuple[str, str]], gold: Iterable[dict[str, str]]) -> list[int | None]:
    """For each gold item, the 1-based rank of the first (source_file, text) passage that hits it."""
    ranks: list[int | None] = []
    for item in gold:
        rank = next(
            (i for i, (source, text) in enumerate(passages, start=1)
             if source == item["source"] and contains_gold(text, item["quote"])),
            None,
        )
        ranks.append(rank)
    return ranks


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def reciprocal_rank(ranks: Sequence[int | None]) -> float:
    found = [r for r in ranks if r is not None]
    return 1.0 / min(found) if found else 0.0
