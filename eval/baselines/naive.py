"""The newcomer's pipeline, as a LangChain tutorial builds it: the baseline policylab must beat.

load (TextLoader / PyPDFLoader equivalents, see :mod:`eval.baselines.common`)
→ ``RecursiveCharacterTextSplitter(1000, 200)``
→ ``langchain_chroma.Chroma`` with our embeddings (``assistant.embeddings.make_embeddings``;
  never Chroma's default embedding function, which would download a model), in its own folder
→ ``similarity_search(question, k=4)``
→ a "stuff" prompt with the same chat model as policylab, asked to cite ``[n]``.

No abstention logic, no citation checking, no hybrid search. When no chat model is available
(the extractive backend), the baseline answers with the first two sentences of its top passage,
each citing ``[1]``; the report says so.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.baselines.common import (
    CHUNK_OVERLAP,
    CHUNK_SIZE,
    corpus_fingerprint,
    load_corpus_documents,
    source_name,
    split_corpus,
)
from eval.metrics import Evidence
from eval.scoring import SystemOutput

log = logging.getLogger(__name__)

NAME = "baseline-naive"
TOP_K = 4
RANK_DEPTH = 10  # retrieval metrics look at the top 10 of the same similarity search
MAX_ANSWER_TOKENS = 500
COLLECTION = "naive"
FALLBACK_SENTENCES = 2

STUFF_PROMPT = """Answer the question based on the context below. Cite the passages you use with their \
number in square brackets, like [1]. If you don't know the answer, just say that you don't know, \
don't try to make up an answer.

Context:
{context}

Question: {question}
Answer:"""

# How a plain LLM says it cannot answer (the prompt asks for "I don't know"), in the dev languages.
ABSTAINS = re.compile(
    r"\b(?:i )?(?:don't|do not|cannot|can't) (?:know|answer|find)|not (?:mentioned|provided|contained|found) in the|"
    r"(?:context|passages?|documents?) (?:does|do) not (?:contain|provide|mention|say)|no information|"
    r"je ne sais pas|ne (?:contient|mentionne|fournit) pas|aucune information|"
    r"weiß (?:ich )?nicht|keine (?:Informationen|Angaben)|nicht (?:im|in den) (?:Kontext|Dokumenten)",
    re.I,
)
SENTENCE = re.compile(r".+?(?:[.!?](?=\s|$)|$)", re.S)


def first_sentences(text: str, count: int = FALLBACK_SENTENCES) -> list[str]:
    """The first ``count`` sentences of a chunk's body text: heading lines skipped, a line break
    ends a sentence too, whitespace collapsed."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line or line.startswith("#"):
            continue
        sentences += [m.group(0).strip() for m in SENTENCE.finditer(line) if len(m.group(0).split()) >= 3]
        if len(sentences) >= count:
            break
    return sentences[:count]


class NaiveBaseline:
    """Build once per corpus (reused while the corpus is unchanged), then answer questions."""

    name = NAME

    def __init__(self, settings: Any, corpus: Path, workdir: Path, model: Any | None = None) -> None:
        self.settings = settings
        self.corpus = corpus
        self.workdir = workdir
        self.model = model
        self.store: Any = None
        self.chunks: list[Any] = []
        self.build_seconds = 0.0
        self.reused = False

    @property
    def answering(self) -> str:
        return getattr(self.model, "name", "model") if self.model is not None else "top-passage fallback (no chat model)"

    def build(self, progress: Callable[[int, int], None] | None = None) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma

        from assistant.embeddings import make_embeddings

        started = time.perf_counter()
        embeddings = make_embeddings(self.settings)
        self.chunks = split_corpus(load_corpus_documents(self.corpus))
        fingerprint = corpus_fingerprint(self.corpus, f"{CHUNK_SIZE}/{CHUNK_OVERLAP}", getattr(embeddings, "name", ""))
        stamp = self.workdir / "fingerprint.json"
        chroma_dir = self.workdir / "chroma"
        saved = json.loads(stamp.read_text()) if stamp.is_file() else {}
        self.reused = saved.get("fingerprint") == fingerprint and saved.get("chunks") == len(self.chunks)
        if not self.reused:
            shutil.rmtree(self.workdir, ignore_errors=True)
        chroma_dir.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(chroma_dir), settings=ChromaSettings(anonymized_telemetry=False))
        self.store = Chroma(collection_name=COLLECTION, embedding_function=embeddings, client=client)
        if not self.reused:
            batch = 32
            for start in range(0, len(self.chunks), batch):
                part = self.chunks[start : start + batch]
                self.store.add_documents(part, ids=[f"c{start + i}" for i in range(len(part))])
                if progress:
                    progress(start + len(part), len(self.chunks))
            stamp.write_text(json.dumps({"fingerprint": fingerprint, "chunks": len(self.chunks)}))
        self.build_seconds = time.perf_counter() - started

    async def run(self, question: str) -> SystemOutput:
        started = time.perf_counter()
        found = self.store.similarity_search(question, k=RANK_DEPTH)
        timings = {"sources_s": time.perf_counter() - started}
        ranking = [(source_name(d), d.page_content) for d in found]
        context_docs = found[:TOP_K]
        pool = {n: Evidence(source_name(d), d.page_content) for n, d in enumerate(context_docs, start=1)}
        if self.model is None:
            sentences = first_sentences(context_docs[0].page_content) if context_docs else []
            answer = " ".join(f"{sentence} [1]" for sentence in sentences)
            timings["first_token_s"] = timings["total_s"] = time.perf_counter() - started
            abstained = not answer
        else:
            context = "\n\n".join(f"[{n}] {d.page_content}" for n, d in enumerate(context_docs, start=1))
            prompt = STUFF_PROMPT.format(context=context, question=question)
            pieces: list[str] = []
            async for token in self.model.stream([{"role": "user", "content": prompt}], max_tokens=MAX_ANSWER_TOKENS,
                                                 temperature=0.1):
                if "first_token_s" not in timings:
                    timings["first_token_s"] = time.perf_counter() - started
                pieces.append(token)
            answer = "".join(pieces).strip()
            timings["total_s"] = time.perf_counter() - started
            abstained = not answer or bool(ABSTAINS.search(answer[:300]))
        from assistant.citations import cited_numbers

        markers = set(cited_numbers(answer))
        evidence = {n: pool[n] for n in sorted(markers) if n in pool}
        return SystemOutput(ranking=ranking, answer=answer, abstained=abstained, evidence=evidence, timings=timings)
