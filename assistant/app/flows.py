"""What the chat does, called by the thin callbacks of ``chainlit_app``: profiles and starters,
settings, the streamed answer with its sources, resuming past chats, exports.

Every user-facing failure becomes a readable message: no stack trace reaches the chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import chainlit as cl
from chainlit.utils import utc_now

from assistant.answer import AnswerRequest, FinalEvent, InputError, SourcesEvent, TokenEvent
from assistant.errors import ModelUnavailableError
from assistant.language import NAMES as LANGUAGE_NAMES
from assistant.retrieval import SearchFilters
from assistant.types import DocumentInfo
from ingest.vectors import VectorStoreUnavailable

from assistant.app import export as export_mod
from assistant.app import uploads
from assistant.app.render import render_answer, sources_found, to_elements
from assistant.app.runtime import state

log = logging.getLogger(__name__)

ANY = "Any"
SAME_LANGUAGE = "auto"
HISTORY_TURNS = 6


@dataclass(frozen=True)
class Profile:
    name: str
    mode: str
    description: str
    starters: tuple[tuple[str, str], ...]  # (file name fragment the starter needs, message)


PROFILES = (
    Profile("Ask", "ask", "Questions answered from the library only, each claim with its source, page or article and the exact quote.", (
        ("unesco-2005", "What does the 2005 Convention say about cultural policies?"),
        ("unesco-2005", "How often must a Party to the 2005 Convention report to UNESCO?"),
        ("wvr-culture", "What role does culture play in Vietnam's diplomacy?"),
        ("unesco-2003", "What must States do to safeguard intangible cultural heritage?"),
        ("hague-1954", "How does the 1954 Hague Convention protect cultural property in armed conflict?"),
    )),
    Profile("Brief", "brief", "A short briefing note before a meeting: context, stated priorities, sensitivities, talking points.", (
        ("wvr-culture", "Brief me on Vietnam's cultural diplomacy"),
        ("asef-linkup", "Brief me on Asia-Europe cultural cooperation before a meeting with ASEF"),
        ("cultural-diplomacy-long-term", "Brief me on how cultural diplomacy builds long-term partnerships"),
        ("unesco-1970", "Brief me on what the 1970 Convention asks of States against illicit trafficking"),
    )),
    Profile("Draft", "draft", "A draft recommendation or policy text grounded in the library, ready to export to Word.", (
        ("asef-linkup", "Draft a recommendation on fairer artist mobility between Asia and Europe"),
        ("unesco-2005", "Draft a policy note on international cooperation under the 2005 Convention"),
        ("unesco-1972", "Draft a recommendation to protect World Heritage sites at risk"),
        ("wvr-culture", "Draft talking points on culture as a pillar of Vietnam's diplomacy"),
    )),
)
MAX_STARTERS = 4


# --- accounts and profiles ----------------------------------------------------------------
async def login(username: str, password: str) -> cl.User | None:
    account = await asyncio.to_thread(state().accounts.current().verify, username, password)
    if account is None:
        return None
    return cl.User(identifier=account.username, display_name=account.username,
                   metadata={"role": account.role, "provider": "credentials"})


def _username() -> str:
    user = cl.user_session.get("user")
    return user.identifier if user else ""


def starters_for(profile: Profile, documents: list[DocumentInfo]) -> list[cl.Starter]:
    files = " ".join(d.source_file for d in documents)
    chosen = [cl.Starter(label=text, message=text) for needs, text in profile.starters if needs in files]
    return chosen[:MAX_STARTERS]


async def chat_profiles(user: cl.User | None) -> list[cl.ChatProfile]:
    documents = state().visible_documents(user.identifier if user else "")
    return [
        cl.ChatProfile(name=p.name, markdown_description=p.description, starters=starters_for(p, documents),
                       default=(p.mode == "ask"))
        for p in PROFILES
    ]


def current_mode() -> str:
    name = cl.user_session.get("chat_profile") or "Ask"
    return next((p.mode for p in PROFILES if p.name == name), "ask")


# --- chat start / resume / settings -------------------------------------------------------------
def settings_widgets(documents: list[DocumentInfo], values: dict[str, Any] | None = None) -> list:
    from chainlit.input_widget import Select, Slider

    values = values or {}
    doc_types = sorted({d.doc_type for d in documents if d.doc_type})
    places = sorted({p for d in documents for p in (d.country, d.region) if p})
    years = [d.year for d in documents if d.year]
    low, high = (min(years), max(years)) if years else (1950, time.gmtime().tm_year)
    languages = {"Same as the question": SAME_LANGUAGE} | {name: code for code, name in LANGUAGE_NAMES.items()}

    def pick(key: str, options: list[str], default: str) -> str:
        return values.get(key) if values.get(key) in options else default

    return [
        Select(id="doc_type", label="Document type", values=[ANY] + doc_types,
               initial_value=pick("doc_type", [ANY] + doc_types, ANY)),
        Select(id="country", label="Country or region", values=[ANY] + places,
               initial_value=pick("country", [ANY] + places, ANY)),
        Slider(id="year_from", label="From year", min=low, max=high, step=1,
               initial=min(max(int(values.get("year_from", low)), low), high)),
        Slider(id="year_to", label="To year", min=low, max=high, step=1,
               initial=min(max(int(values.get("year_to", high)), low), high)),
        Select(id="language", label="Answer language", items=languages,
               initial_value=values.get("language") if values.get("language") in languages.values() else SAME_LANGUAGE,
               description="By default the answer follows the language of your question."),
    ]


async def send_settings(values: dict[str, Any] | None = None) -> None:
    documents = await asyncio.to_thread(state().visible_documents, _username())
    widgets = settings_widgets(documents, values)
    await cl.ChatSettings(widgets).send()
    cl.user_session.set("year_bounds", [widgets[2].min, widgets[2].max])


def chat_commands(username: str) -> list[dict]:
    """The chat's commands for ``username`` (Publish for admins only)."""
    commands = [{"id": "Library", "icon": "library", "description": "List the documents you can ask about", "button": False}]
    if state().role(username) == "admin":
        commands.append({"id": "Publish", "icon": "share-2",
                         "description": "Publish one of your uploads to the shared library (type its file name)", "button": False})
    return commands


async def set_commands() -> None:
    await cl.context.emitter.set_commands(chat_commands(_username()))


async def chat_start() -> None:
    log.info("%s opened a chat (session %s)", _username() or "a visitor", cl.context.session.id)
    cl.user_session.set("history", [])
    cl.user_session.set("exports", {})
    await send_settings()
    await set_commands()


async def chat_resume(thread: dict[str, Any]) -> None:
    """Restore the session from a past thread: conversation memory, settings, export buttons."""
    history: list[dict[str, str]] = []
    exports: dict[str, dict] = {}
    for step in thread.get("steps", []):
        kind, output = step.get("type"), step.get("output") or ""
        if kind == "user_message" and output.strip():
            history.append({"role": "user", "content": output})
        elif kind == "assistant_message":
            metadata = step.get("metadata") or {}
            record = metadata.get("policylab", {}) if isinstance(metadata, dict) else {}
            if "export" in record:
                exports[step["id"]] = record["export"]
                history.append({"role": "assistant", "content": record["export"].get("body", "")})
    cl.user_session.set("history", history[-2 * HISTORY_TURNS:])
    cl.user_session.set("exports", exports)
    await send_settings(cl.context.session.chat_settings or {})
    await set_commands()
    for message_id in exports:
        for action in export_actions(message_id):
            await action.send(for_id=message_id)


async def settings_update(values: dict[str, Any]) -> None:
    cl.user_session.set("chat_settings", values)


def filters_from(values: dict[str, Any], bounds: list[int] | None) -> SearchFilters | None:
    fields = {key: values[key] for key in ("doc_type", "country") if values.get(key) and values.get(key) != ANY}
    year_from, year_to = values.get("year_from"), values.get("year_to")
    low, high = bounds or (None, None)
    year_from = int(year_from) if year_from is not None and year_from != low else None
    year_to = int(year_to) if year_to is not None and year_to != high else None
    if year_from and year_to and year_from > year_to:
        year_from, year_to = year_to, year_from
    filters = SearchFilters(fields, year_from, year_to)
    return None if filters.is_empty() else filters


# --- messages ----------------------------------------------------------------------------------
async def handle_message(message: cl.Message) -> None:
    username = _username()
    role = state().role(username)
    if role is None:
        await cl.ErrorMessage(content="Your account no longer exists. Ask an administrator, then log in again.").send()
        return
    if message.command == "Library":
        await uploads.show_library(username)
        return
    if message.command == "Publish":
        await uploads.publish_by_name(username, message.content.strip())
        return
    files = [e for e in (message.elements or []) if getattr(e, "path", None)]
    if files:
        results = await uploads.ingest_uploads(files, username, admin=(role == "admin"))
        if any(not r.failed for r in results):
            await send_settings(cl.context.session.chat_settings or {})  # new types, places, years
    if message.content.strip():
        await answer(message.content, username)
    elif not files:
        await cl.ErrorMessage(content="Your message is empty. Type a question, or attach documents to add them to your library.").send()


async def answer(question: str, username: str) -> None:
    """Stream an answer: sources as soon as retrieval is done, then the draft, then the verified text."""
    st = state()
    mode = current_mode()
    values = cl.context.session.chat_settings or {}
    language = values.get("language")
    request = AnswerRequest(
        question, mode=mode, history=list(cl.user_session.get("history") or [])[-2 * HISTORY_TURNS:],
        filters=filters_from(values, cl.user_session.get("year_bounds")), viewer=username,
        language=None if language in (None, "", SAME_LANGUAGE) else language,
    )
    parent = cl.context.current_step.id if cl.context.current_step else None
    step = cl.Step(name="Searching the library", type="retrieval", parent_id=parent, show_input=False)
    step.start = utc_now()
    await step.send()
    msg = cl.Message(content="", created_at=utc_now())  # stream_token does not stamp it; history is ordered by it
    final = None
    try:
        async for event in st.engine.stream(request):
            if isinstance(event, SourcesEvent):
                step.name, step.output = sources_found(event.passages)
                step.end = utc_now()
                await step.update()
            elif isinstance(event, TokenEvent):
                await msg.stream_token(event.text)
            elif isinstance(event, FinalEvent):
                final = event.answer
    except asyncio.CancelledError:
        await _stopped(step, msg)
        raise
    except (InputError, ModelUnavailableError, VectorStoreUnavailable) as exc:
        await _close_step(step, "Search stopped")
        await _discard(msg)
        hint = " You can try again in a moment." if getattr(exc, "retryable", False) else ""
        await cl.ErrorMessage(content=f"{exc}{hint}").send()
        return
    except Exception:
        log.exception("Answering %r failed", question)
        await _close_step(step, "Failed")
        await _discard(msg)
        await cl.ErrorMessage(content="Something went wrong while answering; the details are in the server log. "
                                      "Please try again, or rephrase the question.").send()
        return
    if final is None:
        await _discard(msg)
        return
    rendered = render_answer(final, st.document)
    msg.content = rendered.content
    msg.elements = to_elements(rendered)
    record = export_mod.ExportDoc.from_answer(final, question)
    msg.metadata = {"policylab": {"export": record.to_dict(), "mode": mode, "abstained": final.abstained,
                                  "backend": final.backend, "timings": final.timings}}
    msg.actions = [] if final.abstained else export_actions(msg.id)
    if msg.streaming:
        await msg.update()
    else:
        await msg.send()
    await step.update()  # Chainlit persists send and update in concurrent tasks: write the final title last
    if not final.abstained:
        exports = cl.user_session.get("exports") or {}
        exports[msg.id] = record.to_dict()
        cl.user_session.set("exports", exports)
    history = list(cl.user_session.get("history") or [])
    history += [{"role": "user", "content": question}, {"role": "assistant", "content": final.answer}]
    cl.user_session.set("history", history[-2 * HISTORY_TURNS:])


async def _close_step(step: cl.Step, name: str) -> None:
    if step.end is None:
        step.name = name
        step.end = utc_now()
        await step.update()


async def _discard(msg: cl.Message) -> None:
    if msg.streaming:
        await msg.remove()


async def _stopped(step: cl.Step, msg: cl.Message) -> None:
    """After the stop button: the unverified draft is replaced by a short note (its citations were never checked)."""
    await _close_step(step, "Stopped")
    note = "*Stopped. The draft was discarded before its citations were checked; ask again for a verified answer.*"
    if msg.streaming:
        msg.content = note
        await msg.update()


def on_stop() -> None:
    log.info("Generation stopped by %s", _username() or "a user")


# --- exports ----------------------------------------------------------------------------------
def export_actions(message_id: str) -> list[cl.Action]:
    return [
        cl.Action(name="export_docx", payload={"message_id": message_id}, label="Export DOCX", icon="file-text",
                  tooltip="Download this text and its sources as a Word document"),
        cl.Action(name="export_md", payload={"message_id": message_id}, label="Export Markdown", icon="file-down",
                  tooltip="Download this text and its sources as Markdown"),
    ]


async def export(action: cl.Action, kind: str) -> None:
    record = (cl.user_session.get("exports") or {}).get(action.payload.get("message_id", ""))
    if record is None:
        await cl.ErrorMessage(content="This answer can no longer be exported (it was not found in this chat).").send()
        return
    doc = export_mod.ExportDoc.from_dict(record)
    if kind == "docx":
        content = await asyncio.to_thread(export_mod.to_docx, doc)
        file = cl.File(name=doc.filename("docx"), content=content, display="inline",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    else:
        file = cl.File(name=doc.filename("md"), content=export_mod.to_markdown(doc).encode("utf-8"),
                       display="inline", mime="text/markdown")
    await cl.Message(content=f"{doc.title} exported with its {len(doc.sources)} sources: {file.name}",
                     elements=[file]).send()
