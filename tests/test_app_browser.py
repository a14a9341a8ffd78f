"""The chat app as users see it: the real server (`policylab serve`) driven by headless Chromium.

One server runs for the module on a free port, over a temporary data directory holding three
documents of knowledge/ and two accounts. Chromium resolves no host but localhost, and every
request the page makes is recorded: none may leave the machine. Screenshots of the main screens
go to test-artifacts/, with the measured times to first source and first answer token.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import browser_support
from browser_support import ARTIFACTS, CHROMIUM, DONE, AppServer, browser, build_app_data, free_port  # noqa: F401 (fixture)
from eval.bench_browser import MEASURE_JS
from conftest import KNOWLEDGE, REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIBRARY_FILES = (
    "unesco-2005-convention-diversity-of-cultural-expressions.md",
    "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt",
    "asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt",
)
CONVENTION_2005 = "Convention on the Protection and Promotion of the Diversity of Cultural Expressions"
VIETNAM_ARTICLE = "Culture - The pillar of comprehensive diplomacy at a new height"
USERS = {"alice": ("alice-password", "admin"), "bob": ("bob-password", "user")}
UPLOAD_NAME = "mekong-rhine-residency.pdf"
UPLOAD_QUESTION = "What monthly stipend does the Mekong Rhine Artist Residency pay to resident artists?"
ANSWER_TIMEOUT_MS = 240_000

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (make system-deps installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = AppServer(build_app_data(tmp_path_factory.mktemp("app"), LIBRARY_FILES, users=USERS), free_port())
    app.start()
    yield app
    app.stop()


class Visit(browser_support.Visit):
    """One person in the app: the shared browser visit plus profiles, answer counting and the side panel."""

    def __init__(self, browser, server: AppServer) -> None:
        super().__init__(browser, server, USERS)

    def shot(self, name: str) -> None:
        super().shot(f"app-{name}")

    def new_chat(self, profile: str = "Ask") -> None:
        self.page.goto(self.server.url)
        self.wait_session()
        if profile != "Ask":
            self.page.click("#chat-profiles")
            self.page.click(f'[data-test="select-item:{profile}"]')
            self.page.wait_for_timeout(500)
            self.wait_session()

    def finished(self) -> int:
        return self.page.evaluate("(text) => document.body.innerText.split(text).length - 1", DONE)

    def wait_answer(self, before: int = 0, timeout_ms: int = ANSWER_TIMEOUT_MS) -> None:
        super().wait_answer(before, timeout_ms)

    def side_panel_text(self) -> str:
        self.page.wait_for_selector("#side-view-content")
        self.page.wait_for_function("() => document.querySelector('#side-view-content').innerText.trim().length > 20")
        return self.page.inner_text("#side-view-content")


@pytest.fixture
def visit(browser, server, request):
    opened: list[Visit] = []
    failed_before = request.session.testsfailed

    def open_visit() -> Visit:
        opened.append(Visit(browser, server))
        return opened[-1]

    yield open_visit
    browser_support.keep_evidence_if_failed(request, failed_before, server, request.node.name,
                                            {str(number): v for number, v in enumerate(opened, 1)})
    for v in opened:
        outside = v.outside_requests()
        v.close()
        assert not outside, f"the page reached beyond localhost: {outside}"
        assert v.requests, "no request was recorded"


def test_login_ask_and_open_a_citation(visit, server):
    v = visit()
    v.page.goto(server.url)
    v.page.wait_for_selector("#email")
    v.shot("1-login")
    v.login("alice")
    v.page.get_by_text("What does the 2005 Convention say about cultural policies?").wait_for()
    v.shot("2-home")

    v.page.evaluate(MEASURE_JS)
    v.send("What does the 2005 Convention say about cultural policies?")
    v.wait_answer(0)
    timing = v.page.evaluate("() => window.__timing")
    assert timing.get("sources") is not None and timing.get("token") is not None, timing
    assert timing["sources"] <= timing["token"], "the sources must show before the first answer token"
    backend = re.search(r"checked against the sources · (\S+)", v.last_answer().inner_text()).group(1)
    figures = {"backend": backend, "send_to_first_source_ms": round(timing["sources"]),
               "send_to_first_token_ms": round(timing["token"])}
    (ARTIFACTS / "app-browser-timings.json").write_text(json.dumps(figures, indent=2))
    print(f"\nbrowser timings: {figures}")

    answer = v.last_answer()
    assert not v.page.locator("#side-view-content").is_visible(), "the side panel must wait for a click"
    v.shot("3-answer")
    sources = answer.inner_text().split("Sources", 1)[1]
    first_title = re.search(r"\[1\]\s*(.+?) —", sources).group(1).strip()
    assert first_title == CONVENTION_2005
    answer.locator(".element-link", has_text="[1]").first.click()
    panel = v.side_panel_text()
    assert CONVENTION_2005 in panel and "UNESCO General Conference" in panel and "2005" in panel and "Article" in panel
    v.page.wait_for_timeout(800)  # the side panel slides in
    quote = v.page.inner_text("#side-view-content blockquote").strip()
    source = " ".join((KNOWLEDGE / LIBRARY_FILES[0]).read_text(encoding="utf-8").split())
    assert len(quote) > 40 and " ".join(quote.split()) in source, "the side panel must show the exact quote"
    v.shot("4-citation-side-panel")


def test_upload_a_pdf_and_get_its_page_cited(visit, tmp_path):
    from pdf_fixtures import make_paginated_pdf

    pdf = make_paginated_pdf(tmp_path / UPLOAD_NAME, [
        ["The Mekong Rhine Artist Residency is a pilot exchange between cultural institutes in Vientiane and "
         "Strasbourg. It was designed to test fairer conditions for visiting artists from Southeast Asia and Western Europe.",
         "This evaluation report describes the first cohort, the selection process and the lessons learned by the "
         "partner institutions during the pilot year."],
        ["Each resident artist of the Mekong Rhine Artist Residency receives a monthly stipend of 1,850 euros for "
         "the full duration of the stay.",
         "The programme also covers visa fees and return travel for one companion caregiver, so that artists with "
         "family duties can take part."],
        ["The partners recommend extending the residency to three more cities and publishing the selection criteria "
         "in Lao, French and English."],
    ], header="Mekong Rhine Artist Residency - Evaluation report")
    v = visit()
    v.login("alice")
    v.page.set_input_files("#upload-button-input", str(pdf))
    v.page.locator("#attachments", has_text=UPLOAD_NAME).wait_for()
    v.send(UPLOAD_QUESTION)
    v.page.get_by_text("Your library now includes 1 of the 1 file").wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "3 pages" in v.page.inner_text("body") and v.page.get_by_text(f"Publish {UPLOAD_NAME}").is_visible()
    v.wait_answer(0)
    answer = v.last_answer()
    assert "1,850 euros" in answer.inner_text() and "PDF 1, p. 2" in answer.inner_text().replace("P. 2", "p. 2")
    v.shot("5-upload-answer")
    answer.locator(".element-link", has_text="[1]").first.click()
    panel = v.side_panel_text()
    assert "p. 2" in panel and UPLOAD_NAME in panel and "1,850 euros" in panel
    answer.locator(".element-link", has_text="PDF 1").first.click()
    v.page.wait_for_selector('#side-view-content .react-pdf__Page[data-page-number="2"]', timeout=60_000)
    v.page.wait_for_timeout(500)
    v.shot("6-pdf-at-cited-page")


def test_brief_profile(visit):
    v = visit()
    v.login("alice")
    v.new_chat("Brief")
    starter = v.page.get_by_text("Brief me on Vietnam's cultural diplomacy")
    starter.wait_for()
    starter.click()
    v.wait_answer(0)
    text = v.last_answer().inner_text()
    assert VIETNAM_ARTICLE in text and "Sources" in text
    assert "Export DOCX" in v.page.inner_text("body")
    v.shot("7-brief")


def test_draft_and_export_docx(visit):
    from docx import Document

    v = visit()
    v.login("alice")
    v.new_chat("Draft")
    v.send("Draft a recommendation on fairer artist mobility between Asia and Europe")
    v.wait_answer(0)
    answer = v.last_answer()
    cited = re.findall(r"^\[(\d+)\]", answer.inner_text().split("Sources", 1)[1], re.M)
    assert cited, answer.inner_text()
    v.shot("8-draft")
    answer.get_by_text("Export DOCX").click()
    link = v.page.locator("a.inline-file", has_text=".docx")
    link.wait_for()
    target = ARTIFACTS / "app-draft-export.docx"
    v.download(link).save_as(target)
    document = Document(str(target))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert headings[0] == "Draft recommendation" and headings[-1] == "Sources" and len(headings) >= 3, headings
    entries = [p.text for p in document.paragraphs if re.match(r"^\[\d+\] ", p.text)]
    quotes = [p.text for p in document.paragraphs if p.style.name == "Quote"]
    assert len(entries) == len(cited) == len(quotes)
    assert all(re.search(r" — .*(19|20)\d\d", e) for e in entries) and all(len(q) > 20 for q in quotes)
    v.shot("9-export")

    answer.get_by_text("Export Markdown").click()
    md_link = v.page.locator("a.inline-file", has_text=".md")
    md_link.wait_for()
    markdown = Path(v.download(md_link).path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Draft recommendation") and "## Sources" in markdown


# The stop button matters while a model writes: its draft streams in before its citations are checked. The
# extractive backend answers in well under a second here, too fast to stop reliably, so this test has its own
# server answering with the small real model the test suite installs (`make test-models`).
STOP_MODEL = REPO / "data" / "models" / "qwen2.5-coder-0.5b.gguf"
STOPPED_NOTE = "The draft was discarded before its citations were checked"


@pytest.fixture
def model_server(tmp_path):
    from assistant.local_server import runtime_installed

    if not runtime_installed() or not STOP_MODEL.is_file():
        pytest.skip("the local model runtime or qwen2.5-coder-0.5b is missing: run `make llm test-models`")
    data = build_app_data(tmp_path, LIBRARY_FILES[:1], users=USERS)
    app = AppServer(data, free_port(), env={"POLICYLAB_LLM_BACKEND": "local", "POLICYLAB_LOCAL_MODEL": str(STOP_MODEL)})
    app.start()
    yield app
    app.stop()


@pytest.fixture
def model_visit(browser, model_server, request):
    failed_before = request.session.testsfailed
    v = Visit(browser, model_server)
    yield v
    browser_support.keep_evidence_if_failed(request, failed_before, model_server, request.node.name, {"1": v})
    outside = v.outside_requests()
    v.close()
    assert not outside, f"the page reached beyond localhost: {outside}"


def test_stop_button_discards_the_unverified_draft(model_visit):
    v = model_visit
    v.login("alice")
    v.new_chat("Brief")
    v.send("Brief me on how the 2005 Convention treats cultural policies, public funding and artists' mobility")
    v.page.locator('[data-step-type="assistant_message"]').last.wait_for(timeout=ANSWER_TIMEOUT_MS)  # streaming
    v.page.click("#stop-button")
    v.page.get_by_text("Task manually stopped.").wait_for()
    v.page.get_by_text(STOPPED_NOTE).wait_for()  # the streamed draft is replaced, not left unchecked
    v.page.wait_for_timeout(3000)
    assert v.finished() == 0, "a stopped generation must not post an answer"
    assert v.page.locator("#chat-input").is_enabled()
    v.shot("10-stopped")
    v.send("What does the 2005 Convention say about cultural policies?")
    v.page.wait_for_function(  # the app still answers after a stop (verified, or a refusal)
        "([done]) => document.body.innerText.includes(done) || document.body.innerText.includes('does not cover')",
        arg=[DONE], timeout=ANSWER_TIMEOUT_MS,
    )
    assert v.page.get_by_text(STOPPED_NOTE).count() == 1


def test_other_users_cannot_see_an_upload(visit, server):
    from ingest.catalog import doc_id_for

    v = visit()
    v.login("bob")
    assert v.page.get_by_text("What does the 2005 Convention say about cultural policies?").count() > 0
    v.send(UPLOAD_QUESTION)
    v.page.locator('[data-step-type="assistant_message"]').last.wait_for(timeout=ANSWER_TIMEOUT_MS)
    v.page.wait_for_function("() => document.body.innerText.includes('does not cover') || "
                             "document.body.innerText.includes('checked against the sources')", timeout=ANSWER_TIMEOUT_MS)
    body = v.page.inner_text("body")
    assert "1,850" not in body and "PDF 1" not in body and "Mekong Rhine Artist Residency - Evaluation" not in body
    v.shot("11-other-user")
    alice_doc = doc_id_for(UPLOAD_NAME, "alice")
    assert v.page.request.get(f"{server.url}/policylab/docs/{alice_doc}").status == 404
    threads = v.page.request.post(f"{server.url}/project/threads", data={"pagination": {"first": 20}, "filter": {}})
    assert threads.ok and all(t["userIdentifier"] == "bob" for t in threads.json()["data"])


def test_history_survives_a_restart(visit, server):
    server.restart()
    v = visit()
    v.login("alice")
    thread = v.page.locator('[id^="thread-"]', has_text="What does the 2005 Convention say").last
    thread.wait_for()
    thread.click()
    answer = v.page.locator('[data-step-type="assistant_message"]', has_text=DONE).first
    answer.wait_for()
    assert "Export DOCX" in answer.inner_text() or v.page.get_by_text("Export DOCX").count() > 0
    answer.locator(".element-link", has_text="[1]").first.click()
    panel = v.side_panel_text()
    assert CONVENTION_2005 in panel, "citation cards must come back with the resumed chat"
    assert v.page.locator('[data-step-type="retrieval"]', has_text="Sources found").count() >= 1
    v.page.wait_for_timeout(800)  # the side panel slides in
    v.shot("12-resumed")
    before = v.finished()
    v.send("How often must a Party report to UNESCO under the 2005 Convention?")
    v.wait_answer(before)
    assert "Sources" in v.last_answer().inner_text()


def test_admin_publishes_an_upload_for_everyone(visit):
    bob = visit()
    bob.login("bob")
    bob.page.click("#command-button")
    commands = bob.page.inner_text("#command-popover")
    assert "Library" in commands and "Publish" not in commands, "only admins may publish"
    bob.page.keyboard.press("Escape")

    alice = visit()
    alice.login("alice")
    alice.page.click("#command-button")
    alice.page.locator("#command-popover").get_by_text("Publish", exact=True).click()
    alice.send(UPLOAD_NAME)
    alice.page.get_by_text("is now in the shared library").wait_for(timeout=ANSWER_TIMEOUT_MS)
    alice.shot("13-published")

    bob.new_chat()
    bob.send(UPLOAD_QUESTION)
    bob.wait_answer(0)
    assert "1,850 euros" in bob.last_answer().inner_text()


def test_socket_refuses_other_origins(server):
    handshake = f"{server.url}/ws/socket.io/?EIO=4&transport=polling"
    for origin, allowed in ((server.url, True), ("http://localhost:1", False), ("http://evil.example", False)):
        request = urllib.request.Request(handshake, headers={"Origin": origin})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert (status == 200) is allowed, (origin, status)
