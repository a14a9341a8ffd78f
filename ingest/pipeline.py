"""Ingest files into the library: load → clean → chunk → embed → index, one file at a time.

Each file is all-or-nothing: its rows are written as ``ingesting`` first and only become
searchable once every vector is stored. Bad files are reported and skipped; the rest go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from assistant.settings import Settings
from ingest.catalog import content_hash, describe, doc_id_for, load_catalog
from ingest.chunk import chunk_document, chunking_signature
from ingest.library import Library
from ingest.loaders import SUPPORTED_SUFFIXES, check_size, load_document
from ingest.store import CHUNKING_KEY
from ingest.types import IngestError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]  # (event, done, total): "file"/"pages"/"chunks"


class IngestBusyError(RuntimeError):
    """Another ingest holds the data directory's lock."""


@dataclass
class FileResult:
    path: Path
    source_file: str
    status: str  # indexed | replaced | unchanged | failed | skipped
    pages: int = 0
    chunks: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    doc_id: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def expand_paths(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """Files to ingest, with whether each was named explicitly (folders are walked recursively)."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in child.relative_to(path).parts):
                    found.append((child, False))
        else:
            found.append((path, True))
    return found


def safe_source_name(name: str) -> str:
    """A file name stripped of any directory part ("../x.pdf", "a/b.pdf", "a\\b.pdf" → base name)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in {"", ".", ".."}:
        raise IngestError(f"invalid file name {name!r}")
    return base


def ingest_paths(
    paths: Iterable[Path],
    settings: Settings,
    owner: str = "",
    progress: ProgressCallback | None = None,
    lock_timeout: float = 0.0,
    library: Library | None = None,
    source_names: dict[Path, str] | None = None,
) -> list[FileResult]:
    """Ingest every supported file under ``paths``; returns one result per file, in order.

    ``lock_timeout``: seconds to wait for a concurrent ingest on the same data directory
    (0: refuse at once with :class:`IngestBusyError`).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.data_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout as exc:
        raise IngestBusyError(
            f"Another ingest is running on {settings.data_dir}. Wait for it to finish, then run this again."
        ) from exc
    try:
        lib = library or Library.open(settings)
        lib.follow_writers()  # never write over vectors another process added since this process read them
        lib.recover_interrupted()
        files = expand_paths(paths)
        results: list[FileResult] = []
        catalogs: dict[Path, dict] = {}
        changed = False
        for number, (path, explicit) in enumerate(files, start=1):
            if progress:
                progress("file", number - 1, len(files))
            if path.name == "catalog.json" or (not explicit and path.suffix.lower() not in SUPPORTED_SUFFIXES):
                if path.name != "catalog.json":
                    results.append(FileResult(path, path.name, "skipped", reason=f"unsupported type {path.suffix or '(none)'}"))
                continue
            folder = path.parent
            if folder not in catalogs:
                catalogs[folder] = load_catalog(folder)
            name = (source_names or {}).get(path, path.name)
            result = _ingest_one(path, name, settings, lib, owner, catalogs[folder].get(name), progress)
            changed |= result.status in {"indexed", "replaced"}
            results.append(result)
        if progress:
            progress("file", len(files), len(files))
        if changed or not lib.lexical_in_sync():
            lib.rebuild_lexical()
        return results
    finally:
        lock.release()


def _ingest_one(
    path: Path, name: str, settings: Settings, lib: Library, owner: str, catalog_entry: dict | None,
    progress: ProgressCallback | None,
) -> FileResult:
    started = time.perf_counter()
    try:
        source_file = safe_source_name(name)
        if not path.is_file():
            raise IngestError("file not found")
        check_size(path, settings.max_file_mb)  # before hashing: an over-size file is never read
        file_hash = content_hash(path)
        existing = lib.store.find(source_file, owner)
        chunking = chunking_signature(settings.chunk_tokens, settings.chunk_overlap)
        if existing and existing.content_hash == file_hash and existing.status == "complete" \
                and lib.store.get_meta(CHUNKING_KEY + existing.doc_id) == chunking:
            return FileResult(path, source_file, "unchanged", existing.pages, existing.chunks, doc_id=existing.doc_id)
        document = load_document(path, max_file_mb=settings.max_file_mb, ocr=settings.ocr)
        info = describe(document, source_file, file_hash, catalog_entry, owner)
        chunks = chunk_document(document, info.doc_id, file_hash, settings.chunk_tokens, settings.chunk_overlap)
        if not chunks:
            raise IngestError("no text to index after cleaning")
        if progress:
            progress("pages", len(document.pages), len(document.pages))
        lib.add_document(info, document.pages, chunks, progress=progress)
        lib.store.set_meta(CHUNKING_KEY + info.doc_id, chunking)  # same file, other chunking → indexed again
    except IngestError as exc:
        return FileResult(path, name, "failed", reason=exc.reason, seconds=time.perf_counter() - started)
    except Exception as exc:  # an unexpected failure still must not stop the other files
        log.exception("Ingest of %s failed", path)
        return FileResult(path, name, "failed", reason=f"{exc.__class__.__name__}: {exc}", seconds=time.perf_counter() - started)
    warnings = list(document.warnings)
    if document.unreadable_pages:
        warnings.append("pages without readable text: " + ", ".join(map(str, document.unreadable_pages)))
    if document.ocr_pages:
        warnings.append("pages read by OCR: " + ", ".join(map(str, document.ocr_pages)))
    return FileResult(
        path, source_file, "replaced" if existing else "indexed", len(document.pages), len(chunks), warnings=warnings,
        seconds=time.perf_counter() - started, tokens=sum(c.tokens for c in chunks), doc_id=info.doc_id,
    )


__all__ = ["FileResult", "IngestBusyError", "doc_id_for", "ingest_paths", "expand_paths", "safe_source_name"]
