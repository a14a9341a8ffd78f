"""Uploads into a user's private library, the library listing, and publishing (admins) to the shared library."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from pathlib import Path

import chainlit as cl
from filelock import FileLock, Timeout

from assistant.settings import Settings
from assistant.types import DocumentInfo
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import FileResult, IngestBusyError, ingest_paths, safe_source_name
from ingest.types import IngestError
from ingest.vectors import VectorStoreUnavailable

from assistant.app.render import escape_md
from assistant.app.runtime import state

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
UPLOAD_HINT = "PDF, DOCX, TXT, Markdown or HTML"


def _user_dir(username: str) -> str:
    return hashlib.sha1(username.encode("utf-8")).hexdigest()[:12]


def _describe(result: FileResult) -> str:
    if result.failed:
        return f"- ✗ **{escape_md(result.source_file)}**: {escape_md(result.reason)}"
    if result.status == "skipped":
        return f"- – **{escape_md(result.source_file)}**: skipped ({escape_md(result.reason)})"
    what = {"indexed": "added", "replaced": "updated", "unchanged": "already in your library, unchanged"}[result.status]
    detail = f"{result.pages} page{'s' if result.pages != 1 else ''}, {result.chunks} passages"
    warnings = f" ({'; '.join(result.warnings)})" if result.warnings else ""
    return f"- ✓ **{escape_md(result.source_file)}**: {what}, {detail}, private to you{escape_md(warnings)}"


async def ingest_uploads(uploads: list, username: str, admin: bool) -> list[FileResult]:
    """Index attached files into the user's private library, showing progress and per-file errors."""
    st = state()
    settings = st.settings
    total = len(uploads)
    msg = cl.Message(content=f"Adding {total} file{'s' if total != 1 else ''} to your private library…")
    await msg.send()
    results: list[FileResult] = []
    for number, element in enumerate(uploads, start=1):
        name = element.name or "upload"
        progress = {"text": f"File {number}/{total}: **{escape_md(name)}** — reading…"}

        def on_progress(event: str, done: int, count: int, _name=name, _number=number) -> None:
            if event == "pages":
                progress["text"] = f"File {_number}/{total}: **{escape_md(_name)}** — {count} pages read, embedding passages…"
            elif event == "chunks":
                progress["text"] = f"File {_number}/{total}: **{escape_md(_name)}** — passages embedded {done}/{count}"

        try:
            work = asyncio.create_task(asyncio.to_thread(_ingest_one_upload, settings, element, name, username, on_progress))
            shown = ""
            while not work.done():
                if progress["text"] != shown:
                    shown = progress["text"]
                    msg.content = "\n".join([_describe(r) for r in results] + [shown])
                    await msg.update()
                await asyncio.wait({work}, timeout=PROGRESS_EVERY_S)
            results.append(work.result())
        except asyncio.CancelledError:  # the stop button: the file being indexed cannot be interrupted safely
            msg.content = "\n".join([_describe(r) for r in results] + [
                f"*Stopped. {escape_md(name)} is still being indexed and will be in your library when done; "
                "files after it were not added.*"])
            await msg.update()
            raise
        except (IngestBusyError, VectorStoreUnavailable) as exc:
            results.append(FileResult(Path(name), name, "failed", reason=str(exc)))
        except IngestError as exc:
            results.append(FileResult(Path(name), name, "failed", reason=exc.reason))
        except Exception as exc:  # the other files go on
            log.exception("Upload of %s failed", name)
            results.append(FileResult(Path(name), name, "failed", reason=f"unexpected error ({exc.__class__.__name__}); see the server log"))
    ok = [r for r in results if r.status in {"indexed", "replaced", "unchanged"}]
    head = (f"Your library now includes {len(ok)} of the {total} file{'s' if total != 1 else ''} you attached; "
            "only you can see them." if ok else f"None of the attached files could be added. Supported: {UPLOAD_HINT}.")
    msg.content = head + "\n\n" + "\n".join(_describe(r) for r in results)
    if admin:
        msg.actions = [cl.Action(name="publish", payload={"doc_id": r.doc_id}, label=f"Publish {r.source_file}",
                                 icon="share-2", tooltip="Make this document part of the shared library for everyone")
                       for r in ok if r.doc_id]
    await msg.update()
    return results


def _ingest_one_upload(settings: Settings, element, name: str, username: str, on_progress) -> FileResult:
    source_name = safe_source_name(name)
    source = Path(element.path)
    suffix = Path(source_name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"unsupported file type {suffix or '(none)'}; attach {UPLOAD_HINT} files")
    from ingest.catalog import doc_id_for
    from ingest.store import LibraryStore

    slot = LibraryStore(settings.library_db)
    try:
        taken = slot.get(doc_id_for(source_name, username))
    finally:
        slot.close()
    if taken is not None and taken.owner != username:
        raise IngestError("a document of that name was published from your uploads to the shared library; "
                          "rename the file to add a new version")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    uploads_root = (settings.data_dir / "uploads").resolve()
    target = uploads_root / _user_dir(username) / digest / source_name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    try:
        from ingest.library import Library

        library = Library.open(settings)
        previous = library.store.find(source_name, username)
        try:
            [result] = ingest_paths([target], settings, owner=username, progress=on_progress, lock_timeout=60,
                                    library=library, source_names={target: source_name})
        finally:
            library.store.close()
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    if result.failed:
        shutil.rmtree(target.parent, ignore_errors=True)
    elif previous and previous.path and Path(previous.path).resolve() != target:
        old = Path(previous.path).resolve()
        if uploads_root in old.parents:
            shutil.rmtree(old.parent, ignore_errors=True)
    return result


async def show_library(username: str) -> None:
    documents = await asyncio.to_thread(state().visible_documents, username)
    shared = [d for d in documents if not d.owner]
    mine = [d for d in documents if d.owner]

    def line(d: DocumentInfo) -> str:
        return (f"- *{escape_md(d.title)}* — {escape_md(d.publisher or 'n.p.')}, {d.year or 'n.d.'} "
                f"({escape_md(d.doc_type)}; `{d.source_file}`)")

    parts = [f"**Shared library** ({len(shared)} documents)", *map(line, shared), "",
             f"**Your uploads** ({len(mine)}, private to you)", *(map(line, mine) if mine else ["- none yet: attach files to a message"])]
    await cl.Message(content="\n".join(parts)).send()


async def publish(doc_id: str, username: str) -> None:
    """Admins only: move one of their uploads into the shared library."""
    st = state()
    if st.role(username) != "admin":
        await cl.ErrorMessage(content="Only administrators can publish documents to the shared library.").send()
        return
    info = st.store.get(doc_id)
    if info is None or info.owner != username:
        await cl.ErrorMessage(content="That document is not one of your uploads (it may have been removed or already published).").send()
        return
    clash = st.store.find(info.source_file, "")
    if clash is not None:
        await cl.ErrorMessage(content=f"The shared library already has a document named {info.source_file}; "
                                      "rename your file and upload it again to publish it.").send()
        return

    def move() -> None:
        with FileLock(str(st.settings.data_dir / "ingest.lock"), timeout=30):
            st.store.set_owner(doc_id, "")

    try:
        await asyncio.to_thread(move)
    except Timeout:
        await cl.ErrorMessage(content="An ingest is running; publish again in a minute.").send()
        return
    log.info("%s published %s to the shared library", username, info.source_file)
    await cl.Message(content=f"**{info.source_file}** is now in the shared library: every user can ask about it.").send()


async def publish_by_name(username: str, name: str) -> None:
    if not name:
        await cl.ErrorMessage(content="Type the file name of the upload to publish after the Publish command.").send()
        return
    info = state().store.find(name, username)
    if info is None:
        await cl.ErrorMessage(content=f"None of your uploads is named {name!r}; the Library command lists them.").send()
        return
    await publish(info.doc_id, username)
