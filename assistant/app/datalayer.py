"""Chat history: Chainlit's SQLAlchemy data layer on SQLite (default) or PostgreSQL, with its schema.

Chainlit ships the data layer but not its tables: :func:`ensure_schema` creates them (idempotent).
Element files (citation cards, exports, uploads) are kept by :class:`LocalStorageClient` under
``<data_dir>/app_files`` and served back, to their thread's owner only, by :func:`install_routes`,
so a resumed chat shows its sources again. Citations to library PDFs are stored as links to
``/policylab/docs/<doc_id>`` (no copy), served only to users who may see that document.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

log = logging.getLogger(__name__)

FILES_PREFIX = "/policylab/files"
DOCS_PREFIX = "/policylab/docs"

_SQLITE = """
CREATE TABLE IF NOT EXISTS users (
    "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL DEFAULT '{}', "createdAt" TEXT
);
CREATE TABLE IF NOT EXISTS threads (
    "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT REFERENCES users("id") ON DELETE CASCADE,
    "userIdentifier" TEXT, "tags" TEXT, "metadata" TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
    "threadId" TEXT NOT NULL REFERENCES threads("id") ON DELETE CASCADE, "parentId" TEXT,
    "streaming" BOOLEAN NOT NULL DEFAULT 0, "waitForAnswer" BOOLEAN, "isError" BOOLEAN, "metadata" TEXT, "tags" TEXT,
    "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT, "modes" TEXT, "start" TEXT, "end" TEXT,
    "generation" TEXT, "showInput" TEXT, "language" TEXT, "indent" INTEGER, "defaultOpen" BOOLEAN,
    "autoCollapse" BOOLEAN, "icon" TEXT, "feedback" TEXT
);
CREATE TABLE IF NOT EXISTS elements (
    "id" TEXT PRIMARY KEY, "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE, "type" TEXT, "url" TEXT,
    "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INTEGER,
    "language" TEXT, "forId" TEXT, "mime" TEXT, "props" TEXT, "autoPlay" BOOLEAN, "playerConfig" TEXT
);
CREATE TABLE IF NOT EXISTS feedbacks (
    "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT NOT NULL REFERENCES threads("id") ON DELETE CASCADE,
    "value" INTEGER NOT NULL, "comment" TEXT
);
CREATE INDEX IF NOT EXISTS threads_user ON threads("userId");
CREATE INDEX IF NOT EXISTS steps_thread ON steps("threadId");
CREATE INDEX IF NOT EXISTS elements_thread ON elements("threadId");
CREATE INDEX IF NOT EXISTS elements_object ON elements("objectKey");
"""

# The schema of Chainlit's documentation for PostgreSQL, plus the columns 2.12 writes.
_POSTGRES = """
CREATE TABLE IF NOT EXISTS users (
    "id" UUID PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" JSONB NOT NULL, "createdAt" TEXT
);
CREATE TABLE IF NOT EXISTS threads (
    "id" UUID PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" UUID REFERENCES users("id") ON DELETE CASCADE,
    "userIdentifier" TEXT, "tags" TEXT[], "metadata" JSONB
);
CREATE TABLE IF NOT EXISTS steps (
    "id" UUID PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
    "threadId" UUID NOT NULL REFERENCES threads("id") ON DELETE CASCADE, "parentId" UUID,
    "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN, "isError" BOOLEAN, "metadata" JSONB, "tags" TEXT[],
    "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT, "modes" JSONB, "start" TEXT, "end" TEXT,
    "generation" JSONB, "showInput" TEXT, "language" TEXT, "indent" INT, "defaultOpen" BOOLEAN,
    "autoCollapse" BOOLEAN, "icon" TEXT, "feedback" JSONB
);
CREATE TABLE IF NOT EXISTS elements (
    "id" UUID PRIMARY KEY, "threadId" UUID REFERENCES threads("id") ON DELETE CASCADE, "type" TEXT, "url" TEXT,
    "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT,
    "language" TEXT, "forId" UUID, "mime" TEXT, "props" JSONB, "autoPlay" BOOLEAN, "playerConfig" JSONB
);
CREATE TABLE IF NOT EXISTS feedbacks (
    "id" UUID PRIMARY KEY, "forId" UUID NOT NULL, "threadId" UUID NOT NULL REFERENCES threads("id") ON DELETE CASCADE,
    "value" INT NOT NULL, "comment" TEXT
);
CREATE INDEX IF NOT EXISTS threads_user ON threads("userId");
CREATE INDEX IF NOT EXISTS steps_thread ON steps("threadId");
CREATE INDEX IF NOT EXISTS elements_thread ON elements("threadId");
CREATE INDEX IF NOT EXISTS elements_object ON elements("objectKey");
"""


def dialect_of(url: str) -> str:
    return make_url(url).get_backend_name()


def schema_statements(url: str) -> list[str]:
    dialect = dialect_of(url)
    if dialect == "sqlite":
        ddl = _SQLITE
    elif dialect == "postgresql":
        ddl = _POSTGRES
    else:
        raise ValueError(f"POLICYLAB_DATABASE_URL: unsupported database {dialect!r}; use sqlite+aiosqlite:// or postgresql+asyncpg://.")
    return [s.strip() for s in ddl.split(";") if s.strip()]


async def ensure_schema(url: str) -> None:
    """Create the chat-history tables if they do not exist (SQLite file directories included)."""
    statements = schema_statements(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


class LocalStorageClient:
    """Element files on the local disk, read back through ``FILES_PREFIX`` (see :func:`install_routes`).

    It implements Chainlit's ``BaseStorageClient`` interface by duck typing: importing Chainlit here
    would load its config (and create files in the working directory) at import time.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, object_key: str) -> Path:
        path = (self.root / object_key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key {object_key!r} escapes the storage directory")
        return path

    @staticmethod
    def url_of(object_key: str) -> str:
        return f"{FILES_PREFIX}/{quote(object_key, safe='/')}"

    async def upload_file(self, object_key: str, data: bytes | str, mime: str = "application/octet-stream",
                          overwrite: bool = True, content_disposition: str | None = None) -> dict[str, Any]:
        path = self.path_of(object_key)
        if path.exists() and not overwrite:
            return {"object_key": object_key, "url": self.url_of(object_key)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return {"object_key": object_key, "url": self.url_of(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        try:
            self.path_of(object_key).unlink(missing_ok=True)
            return True
        except (OSError, ValueError):
            return False

    async def get_read_url(self, object_key: str) -> str:
        return self.url_of(object_key)

    async def close(self) -> None:
        return None


def _json_fields(row: dict[str, Any], *names: str) -> None:
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value[:1] in "{[":
            try:
                row[name] = json.loads(value)
            except json.JSONDecodeError:
                pass


def make_data_layer(url: str, files_dir: Path):
    """Chainlit's SQLAlchemy data layer for ``url``, storing element files under ``files_dir``."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    class PolicyLabDataLayer(SQLAlchemyDataLayer):
        """SQLAlchemyDataLayer with SQLite's gaps filled: lists and dicts stored as JSON and read back
        as such, and citations to library documents stored as links rather than copies."""

        sqlite = dialect_of(url) == "sqlite"

        async def execute_sql(self, query: str, parameters: dict):
            if self.sqlite:
                parameters = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in parameters.items()}
            return await super().execute_sql(query, parameters)

        async def get_all_user_threads(self, user_id=None, thread_id=None):
            threads = await super().get_all_user_threads(user_id=user_id, thread_id=thread_id)
            for thread in threads or []:
                _json_fields(thread, "metadata", "tags")
                for step in thread.get("steps", []):
                    _json_fields(step, "metadata", "generation", "tags")
            return threads

        async def create_element(self, element):
            if element.url and element.url.startswith(DOCS_PREFIX) and element.for_id:
                row = {k: v for k, v in element.to_dict().items() if v is not None}
                if "props" in row:
                    row["props"] = json.dumps(row["props"])
                columns = ", ".join(f'"{c}"' for c in row)
                values = ", ".join(f":{c}" for c in row)
                await self.execute_sql(f"INSERT INTO elements ({columns}) VALUES ({values}) ON CONFLICT (id) DO NOTHING", row)
                return
            await super().create_element(element)

        async def owner_of_object(self, object_key: str) -> str | None:
            rows = await self.execute_sql(
                'SELECT t."userIdentifier" AS owner FROM elements e JOIN threads t ON e."threadId" = t."id" '
                'WHERE e."objectKey" = :key', {"key": object_key},
            )
            return rows[0]["owner"] if isinstance(rows, list) and rows else None

    return PolicyLabDataLayer(conninfo=url, storage_provider=LocalStorageClient(files_dir))


def install_routes(app, data_layer, document_path: Callable[[str, str], Path | None]) -> None:
    """Serve element files (to their thread's owner) and library documents (to users who may see them).

    ``document_path(doc_id, username)`` returns the file of a document visible to that user, or None.
    The routes go first so that Chainlit's catch-all page route does not shadow them.
    """
    from fastapi import Depends, HTTPException
    from fastapi.responses import FileResponse

    from chainlit.auth import get_current_user

    async def element_file(object_key: str, user=Depends(get_current_user)):
        if user is None:
            raise HTTPException(status_code=401, detail="Log in first.")
        owner = await data_layer.owner_of_object(object_key)
        if owner != user.identifier:
            raise HTTPException(status_code=404, detail="No such file.")
        storage: LocalStorageClient = data_layer.storage_provider
        try:
            path = storage.path_of(object_key)
        except ValueError as exc:
            raise HTTPException(status_code=404, detail="No such file.") from exc
        if not path.is_file():
            raise HTTPException(status_code=404, detail="This file is no longer stored.")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    async def library_document(doc_id: str, user=Depends(get_current_user)):
        if user is None:
            raise HTTPException(status_code=401, detail="Log in first.")
        path = document_path(doc_id, user.identifier)
        if path is None or not path.is_file():
            raise HTTPException(status_code=404, detail="No such document.")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                            content_disposition_type="inline")

    app.add_api_route(FILES_PREFIX + "/{object_key:path}", element_file, methods=["GET"])
    app.add_api_route(DOCS_PREFIX + "/{doc_id}", library_document, methods=["GET"])
    routes = app.router.routes
    for _ in range(2):
        routes.insert(0, routes.pop())
