"""BM25 alone (bm25s, English stopwords and Snowball stemming) over the naive baseline's
1000/200-character chunks: a retrieval-only baseline (it writes no answers)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from eval.baselines.common import source_name
from eval.scoring import SystemOutput

NAME = "bm25"
RANK_DEPTH = 10


class BM25Baseline:
    name = NAME

    def __init__(self, chunks: Sequence[Any]) -> None:
        import bm25s
        import Stemmer

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG
        self.chunks = list(chunks)
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25s = bm25s
        started = time.perf_counter()
        self._retriever = bm25s.BM25()
        if self.chunks:
            self._retriever.index(self._tokenize([c.page_content for c in self.chunks]), show_progress=False)
        self.build_seconds = time.perf_counter() - started

    def _tokenize(self, texts: list[str]) -> Any:
        return self._bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)

    async def run(self, question: str) -> SystemOutput:
        started = time.perf_counter()
        ranking: list[tuple[str, str]] = []
        tokens = self._tokenize([question])
        if self.chunks and tokens[0]:
            k = min(RANK_DEPTH, len(self.chunks))
            docs, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
            ranking = [(source_name(self.chunks[int(d)]), self.chunks[int(d)].page_content)
                       for d, s in zip(docs[0], scores[0]) if s > 0]
        return SystemOutput(ranking=ranking, timings={"sources_s": time.perf_counter() - started})
