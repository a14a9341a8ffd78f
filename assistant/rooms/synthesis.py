"""Synthesis and revision of a room's draft on the answer engine, with verified citations.

The synthesis runs the engine's ``synthesis`` mode over the room's contributions, then the
program completes the draft structure: any section the model (or the extractive backend) left
out is filled from the contributions, every proposal stays attributed ("proposed by …"), and
agreement and disagreement always name who holds each side. A revision rewrites one section
with ``prompts/revise.md``; its citations go through the same verifier as any answer.

Retrieval sees the shared library only, plus documents a member explicitly shared into the
room: never members' other private uploads (:class:`RoomLibrary`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.answer import AnswerEngine, AnswerRequest, format_passages
from assistant.citations import drop_prompt_echo, strip_markers
from assistant.extractive import extractive_answer
from assistant.language import detect_language, language_name
from assistant.prompts import NOT_IN_LIBRARY
from assistant.retrieval import Retriever, SearchFilters
from assistant.types import DocumentInfo, Passage

from assistant.rooms.analysis import Analysis, analyse, short
from assistant.rooms.draft import (
    SECTIONS, Section, join_sections, markers_in, renumber, replace_section, section_text, split_sections,
)
from assistant.rooms.models import Contribution, NewVersion, RoomError, SharedDocument, Version

log = logging.getLogger(__name__)

REVISE_TOP_K = 6
REVISE_MAX_TOKENS = 450
EXTRACTIVE_REVISION_LABEL = "Extractive revision (no language model): the request is recorded and quoted evidence added."


class RoomLibrary:
    """The retriever as a room sees it: shared documents plus those shared into the room.

    It has the methods :class:`AnswerEngine` calls (``search``, ``allowed_documents``, ``library_language``), so
    the engine runs on it unchanged.
    """

    def __init__(self, retriever: Retriever, shared: Sequence[SharedDocument] = ()) -> None:
        self.base = retriever
        self.library = retriever.library
        self.settings = retriever.settings
        self.shared = list(shared)

    def _owner_filters(self, filters: SearchFilters | None) -> dict[str, SearchFilters]:
        """Per owner of a shared upload: the shared library plus that owner's documents shared into the room."""
        common = {d.doc_id for d in self.library.documents(viewer="")}
        by_owner: dict[str, set[str]] = {}
        for doc in self.shared:
            by_owner.setdefault(doc.shared_by, set()).add(doc.doc_id)
        return {
            owner: SearchFilters(dict(filters.fields) if filters else {}, filters.year_from if filters else None,
                                 filters.year_to if filters else None, common | doc_ids)
            for owner, doc_ids in by_owner.items()
        }

    def allowed_documents(self, filters: SearchFilters | None, viewer: str | None) -> dict[str, DocumentInfo]:
        allowed = dict(self.base.allowed_documents(filters, ""))
        for owner, owner_filters in self._owner_filters(filters).items():
            allowed.update(self.base.allowed_documents(owner_filters, owner))
        return allowed

    def library_language(self, viewer: str | None = None) -> str:
        return self.base.library_language("")

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None, viewer: str | None = None,
               candidates: int | None = None, mode: str = "ask") -> list[Passage]:
        if not self.shared:
            return self.base.search(query, k, filters, "", candidates, mode)  # "" = the shared library only
        found: list[Passage] = []
        for owner, allowed in self._owner_filters(filters).items():  # each owner's shared uploads, never their other ones
            found += self.base.search(query, k, allowed, owner, candidates, mode)
        unique = {p.chunk_id: p for p in sorted(found, key=lambda p: p.score)}
        return sorted(unique.values(), key=lambda p: p.score, reverse=True)[: k or self.settings.top_k]


def room_engine(engine: AnswerEngine, shared: Sequence[SharedDocument]) -> AnswerEngine:
    """An engine on the same model and prompts whose retrieval is limited to what the room may use."""
    engine.load_model_if_ready()  # pick up a model installed since start-up, as the chat does
    return AnswerEngine(engine.settings, RoomLibrary(engine.retriever, shared), engine.model)


@dataclass
class DraftResult:
    body: str
    citations: list[dict[str, Any]]
    backend: str
    notices: list[str]


def _section_map(text: str) -> tuple[str, dict[str, str]]:
    preamble, sections = split_sections(text)
    found: dict[str, str] = {}
    for s in sections:
        if s.name in SECTIONS and s.text.strip() and s.name not in found:
            found[s.name] = s.text.strip()
    return preamble, found


def _names_anyone(text: str, people: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text, re.I) for p in people)


def compose_draft(topic: str, contributions: Sequence[Contribution], answer_text: str, abstained: bool) -> tuple[str, list[str]]:
    """The full draft structure from the engine's text and the contributions; returns (body, notices)."""
    analysis: Analysis = analyse(contributions)
    people = analysis.contributors
    preamble, found = ({}, {}) if abstained else _section_map(answer_text)
    preamble = "" if abstained else preamble
    notices = []
    if abstained:
        notices.append("The library holds nothing on this topic: the draft below is built from the contributions only, without citations.")

    sections: dict[str, str] = {}
    title = found.get("Title", "").strip("# *\n")
    sections["Title"] = title or f"Joint recommendation: {topic[:1].upper()}{topic[1:]}"
    actor = analysis.actor or "Policy makers and cultural institutions concerned"
    first = analysis.proposals[0] if analysis.proposals else (contributions[0] if contributions else None)
    addressed = first is not None and analysis.actor is not None and first.text.lower().startswith(analysis.actor.lower())
    if addressed:
        fallback_rec = f"{short(first.text, 240)} (proposed by {first.author})"
    elif first is not None:
        fallback_rec = f"{actor[:1].upper()}{actor[1:]} should act on {topic}: {short(first.text, 200)} (proposed by {first.author})"
    else:
        fallback_rec = f"{actor[:1].upper()}{actor[1:]} should act on {topic}."
    sections["Recommendation"] = found.get("Recommendation") or fallback_rec
    views = [c for c in contributions if c.kind in ("position", "experience")]
    sections["Rationale"] = found.get("Rationale") or "\n".join(
        f"- {short(c.text, 220)} ({c.kind} of {c.author})" for c in views) or "- No position or experience shared yet."
    for name in ("Principles it draws on", "Past challenges it addresses"):
        sections[name] = found.get(name) or "- Nothing in the library supports this section yet."

    steps = found.get("Implementation steps", "")
    missing = [line for p, line in zip(analysis.proposals, analysis.proposal_lines())
               if not (_names_anyone(steps, [p.author]) and short(p.text, 40)[:30].lower() in steps.lower())]
    steps_lines = ([steps] if steps else []) + missing
    sections["Implementation steps"] = "\n".join(steps_lines) or "- No proposal made yet."

    agreement = found.get("Points of agreement", "")
    if not _names_anyone(agreement, people):
        agreement = "\n".join(analysis.agreement_lines()) or "- No point is shared by two or more participants yet."
    sections["Points of agreement"] = agreement

    disagreement = found.get("Points of disagreement", "")
    objectors = [o.author for d in analysis.disagreements for o in d.objections]
    if not _names_anyone(disagreement, people) or not all(_names_anyone(disagreement, [o]) for o in objectors):
        disagreement = "\n".join(analysis.disagreement_lines()) or "- No objection raised."
    sections["Points of disagreement"] = disagreement
    sections["Open questions"] = found.get("Open questions") or "\n".join(analysis.question_lines()) or "- None raised yet."

    contributors = f"*Contributors: {', '.join(people)}.*" if people else ""
    head = "\n\n".join(p for p in (preamble, contributors) if p)
    return join_sections(head, [Section(name, sections[name]) for name in SECTIONS]), notices


async def synthesise(engine: AnswerEngine, topic: str, contributions: Sequence[Contribution], author: str,
                     shared: Sequence[SharedDocument] = ()) -> NewVersion:
    """A new draft from all ``contributions`` (the engine's synthesis mode, then the structure completed)."""
    if not contributions:
        raise RoomError("There is nothing to synthesise yet: post a position, proposal, objection or experience first.")
    scoped = room_engine(engine, shared)
    request = AnswerRequest(topic, mode="synthesis", viewer="", contributions=[c.to_request() for c in contributions])
    answer = await scoped.answer(request)
    body, notices = compose_draft(topic, contributions, answer.answer, answer.abstained)
    body, citations = renumber(body, [c.to_dict() for c in answer.citations])
    return NewVersion(body, citations, "synthesis", author, request=f"Synthesis of {len(contributions)} contributions",
                      backend=answer.backend, contributions_upto=max(c.id for c in contributions),
                      notices=list(answer.notices) + notices)


def contributors_of(body: str) -> list[str]:
    """The participants a draft names in its "Contributors:" line (see ``compose_draft``)."""
    found = re.search(r"^\*Contributors: (.+?)\.\*$", body, re.M)
    return [name.strip() for name in found.group(1).split(",")] if found else []


def _citation_passage(c: dict[str, Any]) -> Passage:
    """A cited quote as a passage of its own, so a revision can keep citing it (offsets stay exact)."""
    return Passage(chunk_id=c["chunk_id"], doc_id=c["doc_id"], text=c["quote"], source_file=c["source_file"],
                   title=c["title"], publisher=c.get("publisher", ""), year=c.get("year"), doc_type="", country="",
                   region="", language="", page=c.get("page"), page_index=c.get("page_index", 0),
                   section=c.get("section", ""), char_start=c["quote_start"], char_end=c["quote_end"], score=1.0,
                   dense_score=1.0)


def _clean_revision(text: str) -> str:
    lines = [line for line in text.strip().splitlines()
             if NOT_IN_LIBRARY not in line and not re.match(r"^#{1,4}\s", line) and not line.strip().startswith("```")]
    return "\n".join(lines).strip()


def _unchanged(revised: str, current: str) -> bool:
    """Whether a revision says the same words as the section it revises (citations aside)."""
    def words(text: str) -> list[str]:
        return re.findall(r"\w+", strip_markers(text).lower())
    return bool(revised.strip()) and words(revised) == words(current)


async def revise(engine: AnswerEngine, topic: str, base: Version, section: str, request: str, author: str,
                 shared: Sequence[SharedDocument] = (), people: Sequence[str] = ()) -> NewVersion:
    """``base`` with ``section`` rewritten as ``request`` asks; new facts are cited and verified. ``people`` (the
    room's members) may be named without a passage mentioning them ("as Dana suggested"), as may the author and the
    draft's contributors."""
    if not request.strip():
        raise RoomError("Say what to change, e.g. “6 make step 2 concrete for small organisations”.")
    scoped = room_engine(engine, shared)
    current = section_text(base.body, section)
    cited = sorted(set(markers_in(current)))
    by_n = {c["n"]: c for c in base.citations}
    own = [_citation_passage(by_n[n]) for n in cited if n in by_n]
    local = {n: i + 1 for i, n in enumerate(n for n in cited if n in by_n)}
    current_local = re.sub(r"\[(\d+)\]", lambda m: f"[{local[int(m.group(1))]}]" if int(m.group(1)) in local else "", current)
    query = f"{topic}. {section}: {request}"
    retrieved = await asyncio.to_thread(scoped.retriever.search, query, REVISE_TOP_K, None, "", None, "ask")
    passages = own + [p for p in retrieved if p.chunk_id not in {o.chunk_id for o in own}]
    language = detect_language(request + " " + topic)
    verifier = engine.verifier_for(passages, [author, *people, *contributors_of(base.body)], f"{topic}\n{request}")
    text, backend, citations = "", scoped.backend, []
    if scoped.model is not None:
        rules = engine.prompts["rules"].render(not_in_library=NOT_IN_LIBRARY, language=language_name(language))
        block, shown = format_passages(passages, engine.settings.llm_prompt_tokens)
        prompt = engine.prompts["revise"].render(rules=rules, passages=block, question=request, language=language_name(language),
                                                 section=section, current=current_local or "(empty)", author=author)
        chunks = [t async for t in scoped.model.stream([{"role": "user", "content": prompt}],
                                                       max_tokens=REVISE_MAX_TOKENS, temperature=0.1)]
        draft = _clean_revision(drop_prompt_echo("".join(chunks), [engine.prompts["rules"].template,
                                                                   engine.prompts["revise"].template]))
        if draft:
            text, citations, _report = await asyncio.to_thread(verifier.verify, draft, shown)
        if _unchanged(text, current):  # the model restated the section: say so rather than "revise" nothing
            text, citations = "", []
    if not text.strip():
        backend = "extractive" if scoped.model is None else f"{scoped.backend} (extractive fallback)"
        evidence = await asyncio.to_thread(extractive_answer, f"{request} {topic}", passages[len(own):],
                                           "ask", verifier.scorer)
        shifted = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + len(own)}]", evidence)
        shifted = re.sub(r"^- (?:[-*•]\s+)+", "- ", shifted, flags=re.M)  # quoted list items keep one bullet
        lines = [f"*{EXTRACTIVE_REVISION_LABEL}*", current_local.strip(), f"- Revision requested by {author}: {request.strip()}"]
        draft = "\n".join(line for line in lines + [shifted] if line)
        text, citations, _report = await asyncio.to_thread(verifier.verify, draft, passages)
    body, merged = replace_section(base.body, base.citations, section, text, [c.to_dict() for c in citations])
    return NewVersion(body, merged, "revision", author, request=request.strip(), section=section, backend=backend,
                      contributions_upto=base.contributions_upto)
