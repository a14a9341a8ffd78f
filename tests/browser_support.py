"""Browser-test support shared by the app and room tests: a real `policylab serve` in its own
process group over a temporary data directory, and the Chromium settings that keep the page offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from conftest import REPO
from eval.load_test import Server, free_port  # noqa: F401 (free_port is re-exported to the tests)

CHROMIUM = Path("/usr/bin/chromium")
POLICYLAB = Path(sys.executable).with_name("policylab")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/|^(data|blob|about):")


class AppServer(Server):
    """`policylab serve` in its own process group on ``port``, started and stopped by the tests."""

    def __init__(self, data_dir: Path, port: int, env: Mapping[str, str] | None = None) -> None:
        super().__init__(data_dir, dict(env or {}))  # e.g. POLICYLAB_LLM_BACKEND=extractive
        self.port = port

    def start(self, timeout: float = 240) -> None:
        try:
            super().start(timeout)
        except RuntimeError as exc:
            pytest.fail(str(exc))

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium for one test module (import this fixture into the module)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- used by the reliability and security tests -------------------------------------------------
DONE = "checked against the sources"


def build_app_data(root: Path, knowledge_files: tuple[str, ...], extra: Mapping[str, str] | None = None,
                   users: Mapping[str, tuple[str, str]] | None = None) -> Path:
    """A data directory whose library holds ``knowledge_files`` (with their catalog entries) and the generated
    ``extra`` files (name → text), indexed by `policylab ingest`, with ``users`` (name → (password, role))."""
    import json
    import shutil

    from assistant.app.auth import add_user
    from conftest import KNOWLEDGE

    library = root / "library"
    library.mkdir(parents=True)
    catalog = [e for e in json.loads((KNOWLEDGE / "catalog.json").read_text()) if e["file"] in knowledge_files]
    (library / "catalog.json").write_text(json.dumps(catalog))
    for name in knowledge_files:
        shutil.copy(KNOWLEDGE / name, library / name)
    for name, text in (extra or {}).items():
        (library / name).write_text(text, encoding="utf-8")
    data_dir = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYLAB_", "CHAINLIT_"))}
    env.update(POLICYLAB_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    indexed = subprocess.run([str(POLICYLAB), "ingest", str(library)], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=1800)
    assert indexed.returncode == 0, indexed.stdout + indexed.stderr
    for name, (password, role) in (users or {}).items():
        add_user(data_dir / "users.json", name, password, role)
    return data_dir


def click_download(page, link, attempts: int = 3):
    """Click a file link and return the browser's download.

    A message that is re-rendered (a new element arriving) can swallow a click made at that
    moment; the user would click again, and so does this, at most ``attempts`` times.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, attempts + 1):
        try:
            with page.expect_download(timeout=20_000) as download_info:
                link.click()
            return download_info.value
        except PlaywrightTimeout:
            if attempt == attempts:
                raise


class Visit:
    """One browser context (one person) with every request it made and every dialog its page opened."""

    def __init__(self, browser, server: AppServer, users: Mapping[str, tuple[str, str]]) -> None:
        self.server, self.users = server, users
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        self.context.set_default_timeout(60_000)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.journal: list[str] = []  # console lines and socket frames, written out when a test fails
        self._opened = time.monotonic()
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.on("dialog", self._on_dialog)
        self.page.on("console", lambda message: self._note(f"console {message.type}: {message.text}"))
        self.page.on("framenavigated", lambda frame: self._note(f"navigated: {frame.url}") if frame == self.page.main_frame else None)
        self.page.on("websocket", self._on_websocket)

    def _note(self, line: str) -> None:
        self.journal.append(f"{time.monotonic() - self._opened:8.2f}s {line[:400]}")

    def _on_websocket(self, socket) -> None:
        self._note(f"socket open: {socket.url}")
        socket.on("framesent", lambda payload: self._note(f"socket sent: {payload}"))
        socket.on("framereceived", lambda payload: self._note(f"socket received: {payload}"))
        socket.on("close", lambda _socket: self._note("socket closed"))

    def keep_evidence(self, name: str) -> None:
        """Save the page and the journal of what it saw under test-artifacts/, for a test that failed."""
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"failed-{name}.log").write_text("\n".join(self.journal) + "\n", encoding="utf-8")
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"))
        except Exception as exc:  # a page that is gone cannot be photographed; the journal still tells
            with (ARTIFACTS / f"failed-{name}.log").open("a", encoding="utf-8") as journal:
                journal.write(f"no screenshot: {exc}\n")

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def download(self, link):
        return click_download(self.page, link)

    def login(self, user: str) -> None:
        page = self.page
        page.goto(self.server.url)
        page.wait_for_selector("#email")
        page.fill("#email", user)
        page.fill("#password", self.users[user][0])
        page.click("button[type=submit]")
        self.wait_session()

    def wait_session(self) -> None:
        self.page.wait_for_selector("#chat-input")
        self.page.wait_for_selector("#chat-settings-open-modal")  # sent by on_chat_start: the session is live

    def send(self, text: str) -> None:
        self.page.fill("#chat-input", text)
        # Chainlit keeps its send button disabled, and ignores Enter, until every attachment has uploaded (a loaded
        # machine takes seconds); while an answer runs the stop button stands in its place
        self.page.wait_for_function(
            "() => { const b = document.querySelector('#chat-submit'); return !b || !b.disabled; }", timeout=120_000,
        )
        self.page.press("#chat-input", "Enter")

    def wait_answer(self, before: int = 0, timeout_ms: int = 240_000) -> None:
        self.page.wait_for_function(
            "([text, n]) => document.body.innerText.split(text).length - 1 > n", arg=[DONE, before], timeout=timeout_ms,
        )
        self.page.wait_for_timeout(300)

    def last_answer(self):
        return self.page.locator('[data-step-type="assistant_message"]', has_text=DONE).last

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if not LOCAL.match(url)]

    def close(self) -> None:
        self.context.close()


def keep_evidence_if_failed(request, failed_before: int, server: AppServer, prefix: str,
                            visits: Mapping[str, Visit]) -> None:
    """In a browser fixture's teardown: if a test failed since ``failed_before`` (the session's count at set-up),
    keep each visit's journal and screenshot and the server's log as test-artifacts/failed-<prefix>-*."""
    if request.session.testsfailed <= failed_before:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"failed-{prefix}-server.log").write_bytes(server.log.read_bytes())
    for label, visit in visits.items():
        visit.keep_evidence(f"{prefix}-{label}")
