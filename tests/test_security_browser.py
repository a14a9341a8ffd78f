"""Output handling in the browser: markup inside a document or a question is shown as text, never run.

The real app (`policylab serve`, extractive backend) over a library holding a generated Markdown document
whose title and sentences carry a ``<script>``, inline event handlers (``onerror``, ``onmouseover``) and a
``javascript:`` link, each of which would set ``window.__pwned`` if it ran. Headless Chromium asks about the
document, so those sentences come back as the answer's quotes, in the sources step and in the citation
card of the side panel; the page must show the text and run none of it.
"""

from __future__ import annotations

import pytest

from browser_support import CHROMIUM, AppServer, Visit, browser, build_app_data, free_port  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (make system-deps installs it)", allow_module_level=True)

USERS = {"alice": ("alice-password", "user")}
HOSTILE_NAME = "saigon-puppet-archive.md"
HOSTILE_DOC = """---
title: Saigon Puppet Archive <script>window.__pwned = "title"</script> annual report
---
# Saigon Puppet Archive

The Saigon Puppet Archive opened its digital reading room in 2021 <img src=x onerror="window.__pwned = 'img'"> with 4,300 scanned puppet scripts from southern Vietnam.

Researchers can book the reading room <script>window.__pwned = "script"</script> through the archive's partner universities in Ho Chi Minh City and Lyon.

Visitors are invited to [read the catalogue](javascript:window.__pwned='link') of the puppet collection <b onmouseover="window.__pwned = 'hover'">before they visit</b> the archive in person.
"""
QUESTIONS = (
    "<img src=x onerror=\"window.__pwned = 'question'\"> When did the Saigon Puppet Archive open its digital reading room?",
    "How can researchers book the reading room of the Saigon Puppet Archive?",
    "What are visitors of the Saigon Puppet Archive invited to do before they visit?",
)
LIVE_MARKUP_JS = """() => ({
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  handlers: document.querySelectorAll('[onerror], [onmouseover], [onclick], [onload]').length,
  jsLinks: [...document.querySelectorAll('a[href]')].filter(a => a.getAttribute('href').trim().toLowerCase().startsWith('javascript:')).length,
  scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('__pwned')).length,
  imgs: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length,
})"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("security-app")
    data_dir = build_app_data(root, ("wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt",),
                              extra={HOSTILE_NAME: HOSTILE_DOC}, users=USERS)
    app = AppServer(data_dir, free_port(), env={"POLICYLAB_LLM_BACKEND": "extractive"})
    app.start()
    yield app
    app.stop()


def test_markup_in_documents_and_questions_is_shown_as_text_and_never_runs(browser, server):
    v = Visit(browser, server, USERS)
    try:
        v.login("alice")
        for n, question in enumerate(QUESTIONS):
            v.send(question)
            v.wait_answer(n)
            answer = v.last_answer()
            answer.hover()
            for link in answer.locator("a").all():  # a sanitised link must not run when clicked
                if "catalogue" in link.inner_text():
                    link.click()
            answer.locator(".element-link", has_text="[1]").first.click()
            v.page.wait_for_selector("#side-view-content")
            v.page.wait_for_timeout(800)
            for hover_target in v.page.get_by_text("before they visit").all():
                hover_target.hover()
        body = v.page.inner_text("body")
        panel = v.page.inner_text("#side-view-content")
        v.shot("security-markup-as-text")
        live = v.page.evaluate(LIVE_MARKUP_JS)
        assert live == {"pwned": None, "handlers": 0, "jsLinks": 0, "scripts": 0, "imgs": 0}, live
        assert not v.dialogs, v.dialogs
        assert "4,300 scanned puppet scripts" in body, "the document's sentence must be quoted"
        assert "partner universities" in body and "before they visit" in body
        assert "Saigon Puppet Archive" in panel, "the citation card must be shown"
        assert not v.outside_requests(), v.outside_requests()
    finally:
        v.close()
