"""Optional LLM-as-judge: faithfulness and helpfulness ratings (1-5) from a model server.

Used only when ``POLICYLAB_JUDGE_BASE_URL`` is set (an OpenAI-compatible ``/v1`` endpoint;
``POLICYLAB_JUDGE_MODEL`` and ``POLICYLAB_JUDGE_API_KEY`` optional). Nothing else depends on
it: without it the report says "judge: skipped". A judge should be a stronger model than the
one being judged; a small local model rating itself is not evidence.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

PROMPT = """You are grading an answer written by an assistant from a library of documents.

Question: {question}

Passages the answer cites:
{evidence}

Answer:
{answer}

Rate the answer on two scales from 1 (worst) to 5 (best):
- faithfulness: every claim is supported by the cited passages (an honest "not in the library" is faithful);
- helpfulness: it answers the question directly and usefully.
Reply with JSON only, like {{"faithfulness": 4, "helpfulness": 3}}."""


class Judge:
    def __init__(self, base_url: str, model: str = "judge", api_key: str = "not-needed", timeout: float = 120.0) -> None:
        from openai import OpenAI

        self.base_url = base_url
        self.model = model
        self._client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=2)

    @classmethod
    def from_env(cls) -> Judge | None:
        base_url = os.environ.get("POLICYLAB_JUDGE_BASE_URL", "").strip()
        if not base_url:
            return None
        return cls(base_url, os.environ.get("POLICYLAB_JUDGE_MODEL", "judge"),
                   os.environ.get("POLICYLAB_JUDGE_API_KEY", "not-needed"))

    def rate(self, question: str, answer: str, evidence: Sequence[str]) -> dict[str, int] | None:
        """{"judge_faithfulness": 1-5, "judge_helpfulness": 1-5}, or None if the judge failed."""
        blocks = "\n".join(f"[{i}] {' '.join(text.split())[:1200]}" for i, text in enumerate(evidence, start=1)) or "(none)"
        prompt = PROMPT.format(question=question, evidence=blocks, answer=answer)
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=60)
            return parse_rating(response.choices[0].message.content or "")
        except Exception as exc:  # the judge is optional: a failure costs a rating, not the run
            log.warning("Judge failed on %r: %s", question[:60], exc)
            return None


def parse_rating(text: str) -> dict[str, int] | None:
    found: dict[str, Any] = {}
    match = re.search(r"\{.*?\}", text, re.S)
    if match:
        try:
            found = json.loads(match.group(0))
        except ValueError:
            found = {}
    for key in ("faithfulness", "helpfulness"):
        if key not in found:
            m = re.search(rf"{key}\W+([1-5])", text, re.I)
            if m:
                found[key] = m.group(1)
    try:
        scores = {f"judge_{k}": int(found[k]) for k in ("faithfulness", "helpfulness")}
    except (KeyError, TypeError, ValueError):
        return None
    return scores if all(1 <= v <= 5 for v in scores.values()) else None
