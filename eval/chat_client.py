"""A scripted chat user of the running app: logs in over HTTP and chats over Chainlit's Socket.IO protocol.

What a browser tab does, without the browser: ``POST /login`` sets the auth cookie, a Socket.IO
connection on ``/ws/socket.io`` opens a session (its ``auth`` payload names the session id and the
chat profile), ``client_message`` sends a message, and the app's replies come back as
``new_message`` / ``stream_start`` / ``stream_token`` / ``update_message`` events until ``task_end``.
Used by the concurrency tests and by ``eval/load_test.py``; it talks to loopback only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import socketio

SOCKET_PATH = "/ws/socket.io"
DONE = "checked against the sources"


class ChatError(RuntimeError):
    """The app refused or did not finish a step of the conversation (the message says which)."""


class BrowserLikeTransport(httpx.AsyncHTTPTransport):
    """Sends a request again, once, on a fresh connection when the one it went out on was closed before any reply.

    The app's server (uvicorn) closes a kept-alive connection after 5 idle seconds; a request sent at that moment
    meets a closed socket (``ReadError``, or ``RemoteProtocolError`` when the server had nothing to say). Browsers
    resend such a request on a new connection, so a tab never sees it; without this, a scripted user on a loaded
    machine fails where a person would not (the 20-user test's uploads, in one clean-clone run of 335 tests).
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            return await super().handle_async_request(request)


@dataclass
class Reply:
    """What the app sent back for one message: its messages by type, in order of arrival, and the time taken."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def texts(self, kind: str = "assistant_message") -> list[str]:
        return [m.get("output") or "" for m in self.messages if m.get("type") == kind]

    @property
    def answer(self) -> str:
        """The last assistant message (the verified answer, an abstention or an error)."""
        texts = self.texts()
        return texts[-1] if texts else ""

    @property
    def errors(self) -> list[str]:
        return [m.get("output") or "" for m in self.messages if m.get("isError")]

    @property
    def verified(self) -> bool:
        return DONE in self.answer

    def all_text(self) -> str:
        return "\n".join(m.get("output") or "" for m in self.messages)


class ChatClient:
    """One person in one chat: ``await client.open()``, then ``await client.ask(...)``; ``await client.close()``."""

    def __init__(self, base_url: str, username: str, password: str, profile: str = "Ask") -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self.password, self.profile = username, password, profile
        self.session_id = str(uuid.uuid4())
        self.cookie = ""
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=60.0, transport=BrowserLikeTransport())
        self.sio = socketio.AsyncClient(reconnection=False)
        self.elements: list[dict[str, Any]] = []  # files and cards the app attached to messages
        self._messages: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._tasks: list[str] = []  # "start" / "end" signals of the app's work, in order of arrival
        self._task_signal = asyncio.Event()
        self._ready = asyncio.Event()
        self._ready_mark = 0
        self._register()

    # -- protocol --------------------------------------------------------------------------------
    def _register(self) -> None:
        def upsert(step: dict[str, Any]) -> None:
            step_id = step.get("id") or str(uuid.uuid4())
            if step_id not in self._messages:
                self._order.append(step_id)
                self._messages[step_id] = {}
            self._messages[step_id].update(step)

        async def on_token(data: dict[str, Any]) -> None:
            entry = self._messages.setdefault(data["id"], {"id": data["id"], "output": ""})
            if data["id"] not in self._order:
                self._order.append(data["id"])
            entry["output"] = data["token"] if data.get("isSequence") else (entry.get("output") or "") + data["token"]

        async def on_remove(step: dict[str, Any]) -> None:
            self._messages.pop(step.get("id", ""), None)

        self.sio.on("new_message", upsert)
        self.sio.on("update_message", upsert)
        self.sio.on("stream_start", upsert)
        self.sio.on("stream_token", on_token)
        self.sio.on("delete_message", on_remove)
        self.sio.on("element", lambda element: self.elements.append(element))
        def task(kind: str):
            def handler(_data: Any = None) -> None:
                self._tasks.append(kind)
                self._task_signal.set()
            return handler

        self.sio.on("task_start", task("start"))
        self.sio.on("task_end", task("end"))
        def ready(_data: Any = None) -> None:  # the last thing on_chat_start sends, before its task ends
            self._ready_mark = len(self._tasks)
            self._ready.set()

        self.sio.on("set_commands", ready)

    async def login(self) -> None:
        response = await self.http.post("/login", data={"username": self.username, "password": self.password})
        if response.status_code != 200:
            raise ChatError(f"{self.username} could not log in: HTTP {response.status_code} {response.text[:200]}")
        self.cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
        self.http.headers["Cookie"] = self.cookie

    async def connect(self, timeout: float = 60.0) -> None:
        auth = {"clientType": "webapp", "sessionId": self.session_id, "threadId": "", "userEnv": "{}",
                "chatProfile": self.profile}
        headers = {"Origin": self.base_url}
        if self.cookie:
            headers["Cookie"] = self.cookie
        await self.sio.connect(self.base_url, headers=headers, auth=auth, socketio_path=SOCKET_PATH,
                               transports=["websocket"], wait_timeout=timeout)
        await self.sio.emit("connection_successful")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            await asyncio.wait_for(self._ended_after(self._ready_mark), timeout)  # on_chat_start has finished
        except asyncio.TimeoutError as exc:
            raise ChatError(f"the chat of {self.username} did not start within {timeout:.0f} s") from exc

    async def open(self) -> ChatClient:
        await self.login()
        await self.connect()
        return self

    async def ask(self, text: str, timeout: float = 300.0, files: list[dict[str, Any]] | None = None) -> Reply:
        """Send ``text`` (with uploaded ``files``) and wait until the app has finished answering it."""
        start = len(self._order)
        seen = len(self._tasks)  # only a task that starts after this message counts
        message = {"id": str(uuid.uuid4()), "threadId": "", "name": self.username, "type": "user_message",
                   "output": text, "createdAt": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
        began = time.perf_counter()
        await self.sio.emit("client_message", {"message": message, "fileReferences": files or []})
        try:
            await asyncio.wait_for(self._finished_after(seen), timeout)
        except asyncio.TimeoutError as exc:
            raise ChatError(f"no answer for {self.username} within {timeout:.0f} s: {text[:80]!r}") from exc
        seconds = time.perf_counter() - began
        await asyncio.sleep(0.1)  # the final update_message is emitted just before task_end; let it land
        steps = [self._messages[i] for i in self._order[start:] if i in self._messages]
        return Reply([s for s in steps if s.get("id") != message["id"]], seconds)

    async def _ended_after(self, seen: int) -> None:
        while "end" not in self._tasks[seen:]:
            self._task_signal.clear()
            await self._task_signal.wait()

    async def _finished_after(self, seen: int) -> None:
        """Return once the app has started and then ended a task after the first ``seen`` signals."""
        while True:
            later = self._tasks[seen:]
            if "start" in later and "end" in later[later.index("start"):]:
                return
            self._task_signal.clear()
            await self._task_signal.wait()

    async def upload(self, path: Path, mime: str = "application/pdf") -> dict[str, Any]:
        """Upload a file to this session (``POST /project/file``); returns the file reference to send with a message."""
        with path.open("rb") as handle:
            response = await self.http.post("/project/file", params={"session_id": self.session_id},
                                            files={"file": (path.name, handle, mime)})
        if response.status_code != 200:
            raise ChatError(f"upload of {path.name} refused: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    async def call_action(self, name: str, payload: dict[str, Any], session_id: str | None = None) -> httpx.Response:
        """Press an action button (``POST /project/action``) in this session, or in ``session_id``'s."""
        action = {"name": name, "payload": payload, "id": str(uuid.uuid4()), "forId": payload.get("message_id")}
        return await self.http.post("/project/action", json={"sessionId": session_id or self.session_id, "action": action})

    async def threads(self) -> list[dict[str, Any]]:
        """The chats the app lists for this user (the sidebar's history)."""
        response = await self.http.post("/project/threads", json={"pagination": {"first": 100}, "filter": {}})
        response.raise_for_status()
        return response.json()["data"]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await self.http.aclose()
