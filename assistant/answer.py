"""The grounded answer engine: retrieve → prompt → model → verify citations → answer or abstain.

``AnswerEngine.stream`` is the one async API the CLI and the app use: it yields the
sources as soon as retrieval is done, then the model's tokens, then the verified answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.citations import (
    MARKER, SAME_DOCUMENT, UNSOURCED, Citation, CitationVerifier,
    VerificationReport, cited_numbers, drop_prompt_echo, states_something, strip_markers,
)
from assistant.counterparts import (
    MENTIONED, MISSING, cited_as, dated_name_holdings, dated_names, instrument_citations, instrument_holdings,
)
from assistant.embeddings import embed_queries, unit_rows
from assistant.excerpts import passage_excerpts
from assistant.extractive import extractive_answer
from assistant.language import detect_language, language_name
from assistant.messages import message
from assistant.prompts import NOT_IN_LIBRARY, load_all
from assistant.query_plan import strip_framing
from assistant.replies import TITLED_MODES, checkable, with_title_as_heading, without_empty_sections, without_preamble
from assistant.retrieval import Retriever, SearchFilters
from assistant.scope import (
    ABSTAIN_DENSE_SCORE, ABSTAIN_DENSE_SCORE_CROSS_LINGUAL, announces_an_occasion, asks_when_or_where_next,
    missing_anchors, question_anchors, read_across_languages,
)
from assistant.settings import Settings
from assistant.tokens import count_tokens, truncate_tokens
from assistant.types import WHOLE_DOCUMENT, Passage

log = logging.getLogger(__name__)

MODES = ("ask", "brief", "draft", "synthesis")
TOP_K = {"ask": 6, "brief": 8, "draft": 8, "synthesis": 8}
MAX_ANSWER_TOKENS = {"ask": 350, "brief": 700, "draft": 800, "synthesis": 900}
MAX_QUESTION_CHARS = 2000
MAX_QUERY_TRANSLATION_TOKENS = 200
MODEL_RECHECK_S = 30.0
# A query translation whose e5 cosine with the request is below this says something else: over the question sets'
# 79 requests in other languages, the local model's translations of answerable ones score 0.862 or more, while its
# replies that were no translation ("Do not answer.", "I will translate the request…", a comment on a quoted phrase)
# score 0.76-0.80 (docs/evaluation.md, "Requests in other languages: a reply that is no translation…").
MIN_TRANSLATION_SIMILARITY = 0.83
MAX_PASSAGE_TOKENS = 300
PROMPT_TITLE_CHARS = 60  # a title's distinctive words come first; the model cites by number, not by title
DEFAULT_EXCERPT_TOKENS = 300  # new tokens of a local model's prompt per request (2 cores read ~110 tokens/s)
SYNTHESIS_EXCERPT_SHARE = 2 / 3  # of the excerpt budget for a synthesis, whose contributions take the rest
NUMERIC_QUESTION = re.compile(
    r"\b(how (much|many)|combien|cu[aá]nt[oa]s?(?! tiempo)|wie (viel|viele)|bao nhi[eê]u)\b", re.I
)  # "por cuánto tiempo" asks how long
# A figure in the evidence: digits, or a number the sources spell out ("a term of four years", "two-thirds").
FIGURE = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred"
    r"|thousand|million|billion|half|thirds?|quarters?|twice|double)\b", re.I,
)
# A reference to a provision ("Article 18", "paragraphs 2 and 4", "Article 7(1)") numbers no quantity.
PROVISION_REFERENCE = re.compile(
    r"\b(?:articles?|paragraphs?|sub-?paragraphs?|chapters?|sections?|annex(?:es)?|rules?|points?)\s+\d+\w?"
    r"(?:\s*\(\w+\))*(?:\s*(?:,|and|or|to|-|–)\s*\d+\w?(?:\s*\(\w+\))*)*",
    re.I,
)


class InputError(ValueError):
    """The question cannot be used as it is; the message says what to do."""


@dataclass
class AnswerRequest:
    question: str
    mode: str = "ask"
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role": "user"|"assistant", "content": ...}]
    filters: SearchFilters | None = None
    viewer: str | None = None
    language: str | None = None  # None: the question's language
    contributions: list[dict[str, str]] = field(default_factory=list)  # synthesis: [{"author", "kind", "text"}]


@dataclass
class ModelDraft:
    """A model's reply (its prompt echo dropped) and the numbered passages it was given: what ``checkable`` and the
    citation check start from, kept so that a change to them can be measured on recorded drafts (``eval.drafts``)."""

    reply: str
    passages: list[Passage]
    # the numbered passages as the prompt showed them (query-focused excerpts for a CPU model): what the model read
    prompt_passages: str = ""


@dataclass
class Answer:
    answer: str
    abstained: bool
    mode: str
    language: str
    citations: list[Citation]
    timings: dict[str, float]
    backend: str = ""
    query: str = ""
    notices: list[str] = field(default_factory=list)
    related: list[dict[str, Any]] = field(default_factory=list)
    verification: VerificationReport = field(default_factory=VerificationReport)
    passages: list[Passage] = field(default_factory=list)
    model_fallback: bool = False  # the model wrote nothing checkable; the answer is labelled quotes instead
    model_declined: bool = False  # the model's whole draft was the "not in the library" sentinel
    model_draft: ModelDraft | None = None  # what the model wrote, for diagnostics and ``eval.drafts``

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer, "abstained": self.abstained, "mode": self.mode, "language": self.language,
            "citations": [c.to_dict() for c in self.citations], "timings": self.timings, "backend": self.backend,
            "query": self.query, "notices": self.notices, "related": self.related,
            "model_fallback": self.model_fallback, "model_declined": self.model_declined, "verification": self.verification.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


@dataclass
class SourcesEvent:
    passages: list[Passage]


@dataclass
class TokenEvent:
    text: str


@dataclass
class NoticeEvent:
    text: str


@dataclass
class FinalEvent:
    answer: Answer


Event = SourcesEvent | TokenEvent | NoticeEvent | FinalEvent


RELATED_DOCUMENTS = 3  # an abstention points to this many documents nearest the question
RELATED_LOCATIONS = 3  # ... and to this many places in each


def clean_question(question: str) -> tuple[str, list[str]]:
    """The question ready to use, and notices for the user; raises :class:`InputError`."""
    if not question or not question.strip():
        raise InputError(message("empty"))
    text = question.strip()
    if not any(ch.isalpha() for ch in text):
        raise InputError(message("no_words"))
    notices = []
    if len(text) > MAX_QUESTION_CHARS:
        notices.append(message("truncated", length=f"{len(text):,}", limit=f"{MAX_QUESTION_CHARS:,}"))
        text = text[:MAX_QUESTION_CHARS]
    return text, notices


def holds_a_figure(text: str) -> bool:
    """The text states a quantity: a figure that is not a provision's number ("Article 18")."""
    return bool(FIGURE.search(PROVISION_REFERENCE.sub("", strip_markers(text))))


def excerpt_query(query: str, request: AnswerRequest) -> str:
    """What the excerpts' sentences are ranked against: the request's topic without its "brief me before
    a meeting with…" framing (whose words would pick sentences about meetings). A synthesis ranks against
    its topic alone, so that its excerpts stay the same while the contributions grow (see ``excerpt_budget``)."""
    if request.mode == "ask":
        return query
    return strip_framing(query)


def prompt_title(title: str, limit: int = PROMPT_TITLE_CHARS) -> str:
    """``title`` cut at a word boundary to about ``limit`` characters: every prompt token costs the CPU model time."""
    if len(title) <= limit:
        return title
    cut = title[:limit].rsplit(" ", 1)[0].rstrip(" ,;:–—-")
    return (cut or title[:limit]) + "…"


def format_passages(
    passages: Sequence[Passage], budget_tokens: int, texts: Sequence[str | None] | None = None
) -> tuple[str, list[Passage]]:
    """Numbered passages for the prompt, as many as fit in ``budget_tokens``.

    ``texts``, one per passage, replace the passages' own texts (query-focused excerpts); a passage
    whose text is None is left out.
    """
    blocks: list[str] = []
    used: list[Passage] = []
    total = 0
    first_of_document: dict[str, int] = {}
    for index, passage in enumerate(passages):
        excerpt = passage.text if texts is None else texts[index]
        if excerpt is None:
            continue
        text = truncate_tokens(excerpt, MAX_PASSAGE_TOKENS)
        n = len(used) + 1
        if passage.doc_id in first_of_document:  # the title once per document keeps the prompt short
            source = f"{SAME_DOCUMENT} [{first_of_document[passage.doc_id]}]"
        else:
            source = f"{prompt_title(passage.title)} ({passage.year or 'n.d.'})"
        location = passage.location.rsplit(" › ", 1)[-1]  # the innermost heading is enough for the model
        where = "" if location == WHOLE_DOCUMENT else f", {location}"
        block = f"[{n}] {source}{where}:\n{text}\n"
        cost = count_tokens(block)
        if used and total + cost > budget_tokens:
            break
        blocks.append(block)
        used.append(passage)
        first_of_document.setdefault(passage.doc_id, n)
        total += cost
    return "\n".join(blocks), used


def format_history(history: Sequence[dict[str, str]], max_tokens: int = 600) -> str:
    lines = [f"{turn['role']}: {' '.join(turn['content'].split())}" for turn in history[-6:]]
    return truncate_tokens("\n".join(lines), max_tokens)


class AnswerEngine:
    """Answers questions from the library with verified citations."""

    def __init__(
        self, settings: Settings, retriever: Retriever, model: Any | None = None,
        model_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.model = model  # an assistant.llm.ChatModel, or None for the extractive backend
        # While extractive, ``model_factory`` is retried now and then: a model installed in the
        # background (first `make run`) is picked up without a restart.
        self.model_factory = model_factory
        self._next_model_check = 0.0
        self.prompts = load_all()
        self.embeddings = retriever.library.vectors.embeddings

    @property
    def backend(self) -> str:
        return getattr(self.model, "name", "model") if self.model is not None else "extractive"

    async def answer(self, request: AnswerRequest) -> Answer:
        final: Answer | None = None
        async for event in self.stream(request):
            if isinstance(event, FinalEvent):
                final = event.answer
        assert final is not None
        return final

    def load_model_if_ready(self) -> None:
        """While extractive, try ``model_factory`` again (at most every MODEL_RECHECK_S seconds)."""
        if self.model is not None or self.model_factory is None or time.monotonic() < self._next_model_check:
            return
        self._next_model_check = time.monotonic() + MODEL_RECHECK_S
        try:
            self.model = self.model_factory()
        except Exception as exc:  # stay extractive; the reason is logged, the answer still comes
            log.warning("Chat model not available yet: %s", exc)
        if self.model is not None:
            log.info("Chat model ready: %s", self.backend)

    async def stream(self, request: AnswerRequest) -> AsyncIterator[Event]:
        started = time.perf_counter()
        self.load_model_if_ready()
        if request.mode not in MODES:
            raise InputError(f"Unknown mode {request.mode!r}; use one of {', '.join(MODES)}.")
        question, notices = clean_question(request.question)
        for notice in notices:
            yield NoticeEvent(notice)
        language = request.language or detect_language(question)
        timings: dict[str, float] = {}

        standalone = await self._standalone_query(question, request.history, language)
        timings["rewrite_s"] = time.perf_counter() - started
        # The request is searched as it stands while the model translates it (if it does): whether the library
        # answers at all is judged on the request in the user's words, on which the gate is calibrated. A
        # translation that renders a name in a form no passage uses ("Convention de La Haye" → "Haye Convention"),
        # or words a request loosely, refused answerable requests (docs/evaluation.md); its passages are still the
        # ones the answer is written from.
        as_typed = asyncio.ensure_future(asyncio.to_thread(self.search, standalone, request))
        query = await self._library_language_query(standalone, language, request.viewer)
        timings["query_translation_s"] = time.perf_counter() - started - timings["rewrite_s"]
        gate_passages = await as_typed
        passages = gate_passages if query == standalone else await asyncio.to_thread(self.search, query, request)
        timings["sources_s"] = time.perf_counter() - started
        yield SourcesEvent(passages)

        fell_back = declined = False
        model_draft: ModelDraft | None = None

        def finish(answer_text: str, citations: list[Citation], abstained: bool, report: VerificationReport) -> FinalEvent:
            timings["total_s"] = time.perf_counter() - started
            related = [] if not abstained else [
                {"title": p.title, "source_file": p.source_file, "location": p.location} for p in passages[:3]
            ]
            return FinalEvent(Answer(
                answer=answer_text, abstained=abstained, mode=request.mode, language=language, citations=citations,
                timings=timings, backend=self.backend, query=query, notices=notices, related=related,
                verification=report, passages=passages, model_fallback=fell_back and not abstained,
                model_declined=declined, model_draft=model_draft,
            ))

        cited = self._cited_sources(question, standalone, gate_passages, request)
        if self.refuses(question, standalone, gate_passages, request, cited):
            yield finish(self._abstention(language, passages, request), [], True, VerificationReport())
            return
        notes = self._source_notes(cited, language)

        # its sentence vectors serve the draft, then the check
        verifier = self.verifier_for(passages, [c.get("author", "") for c in request.contributions],
                                     question if standalone == question else f"{question}\n{standalone}")
        strict = False
        if self.model is None:
            draft = await asyncio.to_thread(self._extractive, query, passages, request.mode, language, verifier)
            shown = passages
            label = message("extractive_label", language)
            timings["first_token_s"] = time.perf_counter() - started
            if draft:
                yield TokenEvent(f"*{label}*\n\n" + draft)
        else:
            excerpts = None
            if self.excerpt_tokens:
                cross_lingual = any(p.language and p.language != language for p in passages)
                excerpts = await asyncio.to_thread(
                    passage_excerpts, excerpt_query(query, request), passages, verifier.scorer,
                    self.excerpt_budget(request), cross_lingual,
                )
            prompt, shown, block = self._prompt(question, passages, request, language, excerpts)
            timings["prompt_tokens"] = float(count_tokens(prompt))
            chunks: list[str] = []
            async for token in self.model.stream(
                [{"role": "user", "content": prompt}], max_tokens=MAX_ANSWER_TOKENS[request.mode], temperature=0.1
            ):
                if "first_token_s" not in timings:
                    timings["first_token_s"] = time.perf_counter() - started
                chunks.append(token)
                yield TokenEvent(token)
            reply = drop_prompt_echo(
                "".join(chunks), [self.prompts["rules"].template, self.prompts[request.mode].template],
                question if request.mode != "synthesis" else "",  # a synthesis may rightly restate a contribution
            )
            model_draft = ModelDraft(reply, list(shown), block)
            draft, strict, declined = checkable(reply)
            label = ""
            timings["generation_s"] = time.perf_counter() - started - timings.get("first_token_s", 0.0)
            timings["answer_tokens"] = float(count_tokens(reply))
        report = VerificationReport()
        text, citations = "", []
        if draft:
            text, citations, report = await asyncio.to_thread(verifier.verify, draft, shown, strict)
            if request.mode in TITLED_MODES:
                text = with_title_as_heading(text)
            timings["verify_s"] = time.perf_counter() - started - timings.get("first_token_s", 0.0) - timings.get("generation_s", 0.0)
        if declined:
            log.info("The model found nothing in the passages for %r; answering that the library does not hold it.", query)
        if (not citations or not states_something(text)) and self.model is not None and not declined:
            # The retrieval gate found relevant passages but the model wrote nothing the program could
            # verify (an invented figure removed, a letter of unsupported sentences, only cited questions): fall
            # back to quoted sentences, labelled. A draft that is only the sentinel is the model's reading that no
            # passage is about the request, and is respected: with the current prompts no answerable request of
            # three sets (55) drew one, while off-topic ones did and got beside-the-point quotes (docs/evaluation.md).
            log.info("The model's draft kept no verified citation (%s); answering with quotes. Draft: %.600s",
                     report.to_dict(), model_draft.reply if model_draft else "")
            fallback = await asyncio.to_thread(self._extractive, query, passages, request.mode, language, verifier)
            if fallback:
                text, citations, report = await asyncio.to_thread(verifier.verify, fallback, passages)
                label = message("model_fallback_label", language)
                fell_back = True
        if citations and self.model is not None and detect_language(strip_markers(text), language) != language:
            # Small models often answer in the sources' language, and quoted fallbacks are in it by
            # nature: have the model translate, then check the translation like any other draft.
            yield NoticeEvent(message("translating", language))
            checked_against = passages if fell_back else shown
            translated = await self._translate(text, citations, checked_against, language, verifier)
            timings["translate_s"] = time.perf_counter() - started - timings.get("first_token_s", 0.0)
            if translated is not None:
                text, citations, report = translated
                if fell_back:
                    label = message("translated_fallback_label", language)
            else:  # say why the answer is not in the user's language
                label = " ".join(filter(None, [label, message("untranslated_label", language)]))
        if not citations:
            yield finish(self._abstention(language, passages, request), [], True, report)
            return
        text = "\n\n".join([*(f"*{line}*" for line in [label, *notes] if line), without_empty_sections(text)])
        if UNSOURCED in text:
            text = f"{text}\n\n*{message('unsourced_note', language)}*"
        yield finish(text, citations, False, report)

    # --- steps -------------------------------------------------------------
    def verifier_for(self, passages: Sequence[Passage], people: Sequence[str] = (), request: str = "") -> CitationVerifier:
        """A citation checker that already knows the vectors ``passages``' sentences got at indexing; the names of
        ``people`` (a room's participants, to whom a synthesis attributes ideas) need no passage to mention them.
        The names of ``request`` and the passages' countries and regions are read as names even as a claim's first
        word ("Vietnam has…"), so a passage that never mentions them does not support it."""
        places = [w for p in passages for w in re.findall(r"[A-Z][^\W\d_]+", f"{p.country or ''} {p.region or ''}")]
        verifier = CitationVerifier(self.embeddings, known_names=" ".join(people), request=request, places=places)
        verifier.scorer.seed(self.retriever.library.stored_sentence_vectors({p.chunk_id: p.text for p in passages}))
        return verifier

    def search(self, query: str, request: AnswerRequest) -> list[Passage]:
        """The passages ``request``'s mode reads for ``query``."""
        return self.retriever.search(query, TOP_K[request.mode], request.filters, request.viewer, None, request.mode)

    def refuses(
        self, question: str, query: str, passages: Sequence[Passage], request: AnswerRequest,
        cited: Sequence[tuple[str, str]] | None = None,
    ) -> bool:
        """Whether the library does not answer ``question`` (``query``: its stand-alone form), judged on the
        ``passages`` found for ``query``: nothing close enough, the names it asks about missing, instruments
        or editions it dates not held, or a coming occasion no passage announces. ``cited``: the request's
        ``_cited_sources`` on the same passages, when the caller has them already."""
        if cited is None:
            cited = self._cited_sources(question, query, passages, request)
        return (self._out_of_scope(query, passages, request.mode)
                or self._cites_missing_sources(cited)
                or (request.mode == "ask" and asks_when_or_where_next(question) and not announces_an_occasion(passages)))

    def _rules(self, language: str) -> str:
        return self.prompts["rules"].render(not_in_library=NOT_IN_LIBRARY, language=language_name(language))

    async def prime(self, mode: str = "ask", language: str = "en") -> None:
        """Have the model server read the fixed start of ``mode``'s prompt (rules, task) ahead of the first question.

        llama.cpp reuses the longest common prefix of consecutive prompts, and every prompt (answers and
        follow-up rewrites alike) starts with the rules, so the first question then costs only its own
        passages. Does nothing without a model.
        """
        if self.model is None:
            return
        prompt, _, _ = self._prompt("", [], AnswerRequest("", mode=mode), language)
        prefix = prompt.split("Passages:", 1)[0] + "Passages:"
        async for _token in self.model.stream([{"role": "user", "content": prefix}], max_tokens=1, temperature=0.0):
            pass

    async def _standalone_query(self, question: str, history: Sequence[dict[str, str]], language: str = "en") -> str:
        if not history:
            return question
        if self.model is None:
            previous = [t["content"] for t in history if t.get("role") == "user"]
            return f"{previous[-1]} {question}" if previous else question
        prompt = self.prompts["rewrite"].render(rules=self._rules(language), history=format_history(history), question=question)
        parts: list[str] = []
        async for token in self.model.stream([{"role": "user", "content": prompt}], max_tokens=80, temperature=0.0):
            parts.append(token)
        rewritten = " ".join("".join(parts).strip().splitlines()[:1]).strip().strip('"')
        return rewritten if len(rewritten) > 3 else question

    async def _library_language_query(self, query: str, language: str, viewer: str | None) -> str:
        """``query`` translated into the language most of the library is written in, when it differs.

        The small multilingual embedder matches a French or Spanish question to English passages poorly, and
        BM25 not at all; the chat model's translation finds them (docs/evaluation.md). The answer itself is
        still written in the question's language. Without a model, or if the translation fails, comes back
        in the wrong language or says something else, the query is searched as typed.
        """
        if self.model is None or not self.settings.translate_queries:
            return query
        target = await asyncio.to_thread(self.retriever.library_language, viewer)
        if not target or target == language:
            return query
        translated = await self.query_translation(query, language, target)
        usable = await asyncio.to_thread(self.usable_query_translation, query, translated, target)
        return translated if usable else query

    def usable_query_translation(self, query: str, translated: str, target: str) -> bool:
        """Whether the model's reply ``translated`` can be searched for ``query``: in ``target``, and saying what
        the request says (a small model sometimes answers, comments or echoes its instructions: "Do not answer.")."""
        if len(translated) < 3 or detect_language(translated, target) != target:
            log.info("Query translation into %s not used: %r", target, translated[:80])
            return False
        similarity = self.query_similarity(query, translated)
        if similarity < MIN_TRANSLATION_SIMILARITY:
            log.info("Query translation into %s not used: it does not say what the request says (e5 cosine %.3f): %r",
                     target, similarity, translated[:80])
            return False
        return True

    async def query_translation(self, query: str, language: str, target: str) -> str:
        """The model's reply when asked to translate ``query`` into ``target`` for the search, its first line only;
        "" if the model failed."""
        prompt = self.prompts["search_query"].render(rules=self._rules(language), question=query, target=language_name(target))
        budget = min(2 * count_tokens(query) + 16, MAX_QUERY_TRANSLATION_TOKENS)
        parts: list[str] = []
        try:
            async for token in self.model.stream([{"role": "user", "content": prompt}], max_tokens=budget, temperature=0.0):
                parts.append(token)
        except Exception as exc:  # the search goes on with the query as typed
            log.warning("Query translation failed (%s); searching the question as typed.", exc)
            return ""
        lines = [line.strip().strip('"') for line in "".join(parts).strip().splitlines() if line.strip()]
        return lines[0] if lines else ""

    def query_similarity(self, first: str, second: str) -> float:
        """The e5 cosine of two queries (the embedder reads both languages)."""
        vectors = unit_rows(embed_queries(self.embeddings, [first, second]))
        return float(vectors[0] @ vectors[1])

    async def _translate(
        self, text: str, citations: Sequence[Citation], passages: Sequence[Passage], language: str,
        verifier: CitationVerifier,
    ) -> tuple[str, list[Citation], VerificationReport] | None:
        """``text`` in ``language``, its citations verified again; None if the translation does not hold up."""
        index = {p.chunk_id: i + 1 for i, p in enumerate(passages)}
        by_number = {c.n: index.get(c.chunk_id) for c in citations}

        def to_passage_numbers(match: re.Match[str]) -> str:
            numbers = [by_number.get(n) for n in cited_numbers(match.group(0))]
            return " " + "".join(f"[{n}]" for n in numbers if n)

        source = MARKER.sub(to_passage_numbers, text)
        prompt = self.prompts["translate"].render(text=source, language=language_name(language))
        parts: list[str] = []
        budget = min(2 * count_tokens(source) + 64, self.settings.llm_context // 2)
        async for token in self.model.stream([{"role": "user", "content": prompt}], max_tokens=budget, temperature=0.0):
            parts.append(token)
        draft = without_preamble(drop_prompt_echo("".join(parts), [self.prompts["translate"].template]), source)
        if not draft.strip():
            return None
        verified = await asyncio.to_thread(verifier.verify, draft, passages)
        if not verified[1] or detect_language(strip_markers(verified[0]), language) != language:
            log.info("Translation into %s not used: %s", language, "no verified citation" if not verified[1] else "wrong language")
            return None
        return verified

    @staticmethod
    def _cites_missing_sources(cited: Sequence[tuple[str, str]]) -> bool:
        """The request dates what it asks about (``cited``: see ``_cited_sources``), and the library holds none of
        it: instruments cited by year ("the 1995 UNIDROIT Convention") or names next to a year ("ASEF LinkUp in
        2025", "the EU's 2016 Joint Communication"). Passages on the same theme from other instruments, or another
        year's edition, would answer a question that was not asked."""
        return bool(cited) and all(holding == MISSING for _, holding in cited)

    def _cited_sources(
        self, question: str, query: str, passages: Sequence[Passage], request: AnswerRequest
    ) -> list[tuple[str, str]]:
        """The sources the request cites by year, as it words them, each with what the library has of it (``HELD``,
        ``MENTIONED`` by a passage only, or ``MISSING``; see :mod:`assistant.counterparts`). The question as typed
        is read first, then ``query`` (a follow-up's rewrite)."""
        instruments, instruments_in = instrument_citations(question), question
        if not instruments:
            instruments, instruments_in = instrument_citations(query), query
        names, names_in = dated_names(question), question
        if not names:
            names, names_in = dated_names(query), query
        if not instruments and not names:
            return []
        documents = list(self.retriever.allowed_documents(request.filters, request.viewer).values())
        evidence = " ".join(f"{p.title} {p.section} {p.text}" for p in passages).lower()
        holdings = instrument_holdings(instruments, documents, evidence) + dated_name_holdings(names, documents, passages)
        wordings = [cited_as(instruments_in, *c) for c in instruments] + [cited_as(names_in, *c) for c in names]
        return list(zip(wordings, holdings))

    @staticmethod
    def _source_notes(cited: Sequence[tuple[str, str]], language: str) -> list[str]:
        """A note for each source the request dates that the library does not hold (``cited``: see
        ``_cited_sources``), once per wording: one its passages only mention ("What does the MONDIACULT 2022
        Declaration say…": a report mentions it), so that an answer from those passages is not taken for the
        source's own words; one it lacks altogether while it holds the others ("Compare the 1970 Convention with the
        1995 UNIDROIT Convention"), so that an answer on the rest is not taken for the whole."""
        notes = {MENTIONED: "only_mentioned", MISSING: "not_held"}
        by_wording = dict(cited)  # the last holding of a wording
        return [message(notes[holding], language, source=source) for source, holding in by_wording.items()
                if holding in notes]

    def _out_of_scope(self, question: str, passages: Sequence[Passage], mode: str) -> bool:
        if not passages:
            return True
        best = max((p.dense_score or 0.0) for p in passages)
        threshold = ABSTAIN_DENSE_SCORE_CROSS_LINGUAL if read_across_languages(passages, detect_language(question)) \
            else ABSTAIN_DENSE_SCORE
        if best < threshold:
            return True
        # a draft names its addressees and participants ("to the European Commission", "producers from Southeast
        # Asia"), which the library need not hold, word by word; a question or brief names its subject
        anchors = question_anchors(question, passages, whole_names=mode != "draft")
        missing = missing_anchors(anchors, passages)
        return bool(anchors) and len(missing) * 2 > len(anchors)

    def _nothing_to_search(self, request: AnswerRequest) -> str:
        """Why no passage could be found at all: "library_empty" when the viewer sees no document,
        "filters_exclude_all" when the request's filters leave none; "" when there were documents to search."""
        if not self.retriever.allowed_documents(None, request.viewer):
            return "library_empty"
        if request.filters is not None and not self.retriever.allowed_documents(request.filters, request.viewer):
            return "filters_exclude_all"
        return ""

    def _abstention(self, language: str, passages: Sequence[Passage], request: AnswerRequest) -> str:
        if not passages and (reason := self._nothing_to_search(request)):
            return message(reason, language)  # "not covered" would mislead: nothing was searched
        lines = [message("not_in_library", language)]
        related: dict[str, tuple[Passage, list[str]]] = {}  # document → its best passage, its locations once each
        for p in passages:
            if p.doc_id in related or len(related) < RELATED_DOCUMENTS:
                places = related.setdefault(p.doc_id, (p, []))[1]
                if p.location not in places and len(places) < RELATED_LOCATIONS:
                    places.append(p.location)
        if related:
            lines += ["", message("related", language)]
            for best, places in related.values():
                named = [place for place in places if place != WHOLE_DOCUMENT] or places  # "whole document" says nothing more
                lines.append(f"- {best.title} ({best.year or 'n.d.'}), {'; '.join(named)}")
        return "\n".join(lines)

    def _extractive(
        self, question: str, passages: Sequence[Passage], mode: str, language: str, verifier: CitationVerifier
    ) -> str:
        cross_lingual = read_across_languages(passages, language)
        text = extractive_answer(question, passages, mode, verifier.scorer, cross_lingual, language)
        if text and mode == "ask" and NUMERIC_QUESTION.search(question) and not holds_a_figure(text):
            # A "how much / how many" question whose most relevant sentences hold no figure is refused, unless the
            # passage of the best of them gives one in another relevant sentence ("An Intergovernmental Committee …
            # shall be established", then "It shall be composed of representatives of 18 States"); a figure from
            # another passage ("since 2008", "1 %") answers another question. A brief or draft covers several
            # things: one asked in figures that the library answers in words ("a substantial share") refuses none.
            best_passage = passages[cited_numbers(text)[0] - 1].text
            return extractive_answer(question, passages, mode, verifier.scorer, cross_lingual, language,
                                     usable=lambda sentence: holds_a_figure(sentence) and sentence in best_passage)
        return text

    @property
    def excerpt_tokens(self) -> int:
        """Tokens of passage excerpts per prompt; 0 sends whole passages (see :mod:`assistant.excerpts`)."""
        configured = self.settings.llm_excerpt_tokens
        if configured is not None:
            return configured
        return DEFAULT_EXCERPT_TOKENS if getattr(self.model, "runs_on_cpu", False) else 0

    def excerpt_budget(self, request: AnswerRequest) -> int:
        """Tokens of passage excerpts for ``request``. A synthesis's prompt also carries the contributions,
        so its passages get a fixed share of the budget: fixed, not shrinking as contributions grow, so that
        a room's next synthesis sends the same passages and llama.cpp reuses its cached prompt up to the
        contributions (first token ~0.6 s instead of ~4 s, docs/benchmarks.md)."""
        if request.mode == "synthesis":
            return int(self.excerpt_tokens * SYNTHESIS_EXCERPT_SHARE)
        return self.excerpt_tokens

    def _prompt(
        self, question: str, passages: Sequence[Passage], request: AnswerRequest, language: str,
        excerpts: Sequence[str | None] | None = None,
    ) -> tuple[str, list[Passage], str]:
        """``request``'s prompt, the passages it numbers, and their block as the prompt shows them."""
        name = request.mode
        rules = self._rules(language)
        contributions = "\n".join(
            f"- {c.get('author', 'participant')} ({c.get('kind', 'contribution')}): {' '.join(c.get('text', '').split())}"
            for c in request.contributions
        )
        fixed = count_tokens(rules + question + contributions) + count_tokens(self.prompts[name].template)
        budget = min(self.settings.llm_context - MAX_ANSWER_TOKENS[name] - fixed - 64, self.settings.llm_prompt_tokens)
        block, used = format_passages(passages, max(budget, 300), excerpts)
        values = dict(rules=rules, passages=block, question=question, language=language_name(language),
                      not_in_library=NOT_IN_LIBRARY, contributions=contributions or "(none)")
        template = self.prompts[name].template
        return self.prompts[name].render(**{k: v for k, v in values.items() if "{" + k + "}" in template}), used, block
