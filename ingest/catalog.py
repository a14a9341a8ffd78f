"""Document metadata: catalog entry, then the file's own metadata, then what we can infer."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from assistant.language import detect_language
from assistant.types import DocumentInfo
from ingest.types import LoadedDocument

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.json"
FIELDS = ("title", "publisher", "year", "doc_type", "country", "region", "language")


def load_catalog(folder: Path) -> dict[str, dict[str, Any]]:
    """``catalog.json`` of ``folder`` keyed by file name ({} when absent or unreadable)."""
    path = folder / CATALOG_NAME
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("Ignoring %s: %s", path, exc)
        return {}
    return {e["file"]: e for e in entries if isinstance(e, dict) and "file" in e}


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def doc_id_for(source_file: str, owner: str = "") -> str:
    """Stable id of a document slot: the same file name (per owner) keeps its id across edits."""
    return hashlib.sha1(f"{owner}\x00{source_file}".encode()).hexdigest()[:16]


def _title_from_text(doc: LoadedDocument) -> str:
    for page in doc.pages[:2]:
        for line in page.text.splitlines():
            line = line.strip().lstrip("#").strip()
            if 3 <= len(line) <= 200:
                return line
    return ""


def _year_from_name(name: str) -> int | None:
    match = re.search(r"(?<!\d)(19[0-9]{2}|20[0-9]{2})(?!\d)", name)
    return int(match.group(1)) if match else None


def _coerce_year(value: Any) -> int | None:
    if value in (None, ""):
        return None
    match = re.search(r"(19|20)\d{2}", str(value))
    return int(match.group(0)) if match else None


def describe(
    doc: LoadedDocument, source_file: str, file_hash: str, catalog_entry: dict[str, Any] | None, owner: str = ""
) -> DocumentInfo:
    """Merge the metadata sources into one ``DocumentInfo``."""
    merged: dict[str, Any] = {}
    for source in (catalog_entry or {}, doc.file_metadata):
        for key in FIELDS:
            if merged.get(key) in (None, "") and source.get(key) not in (None, ""):
                merged[key] = source[key]
    text_sample = "\n".join(p.text for p in doc.pages[:5])
    stem = Path(source_file).stem
    return DocumentInfo(
        doc_id=doc_id_for(source_file, owner),
        source_file=source_file,
        title=str(merged.get("title") or _title_from_text(doc) or stem.replace("-", " ").replace("_", " ")),
        publisher=str(merged.get("publisher") or ""),
        year=_coerce_year(merged.get("year")) or _year_from_name(stem),
        doc_type=str(merged.get("doc_type") or "document"),
        country=str(merged.get("country") or ""),
        region=str(merged.get("region") or ""),
        language=str(merged.get("language") or detect_language(text_sample)),
        content_hash=file_hash,
        pages=len(doc.pages),
        paginated=doc.paginated,
        owner=owner,
        path=str(doc.path),
        status="ingesting",
    )
