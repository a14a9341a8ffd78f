"""What the baselines share: the newcomer's loading and 1000/200 character chunking of a folder.

The newcomer's pipeline uses LangChain's ``TextLoader`` and ``PyPDFLoader`` from
``langchain_community``. That package is not installed here (it is being split up and
retired upstream), and both loaders are thin wrappers, so we do what they do directly:
a text file becomes one ``Document`` with ``metadata={"source": path}``; a PDF becomes one
``Document`` per page (``pypdf``'s ``extract_text``) with ``metadata={"source", "page"}``.
DOCX and HTML files (not covered by those two loaders) are read as plain text with
python-docx and BeautifulSoup, the equivalents of ``Docx2txtLoader`` and ``BSHTMLLoader``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from langchain_core.documents import Document

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
SUFFIXES = {".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"}


def corpus_files(corpus: Path) -> list[Path]:
    """The files the baselines read (hidden files and ``catalog.json`` skipped)."""
    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and p.name != "catalog.json"
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )


def corpus_fingerprint(corpus: Path, *extra: str) -> str:
    """A hash of the corpus' file names and contents (plus ``extra`` settings)."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus):
        digest.update(str(path.relative_to(corpus)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for item in extra:
        digest.update(item.encode())
    return digest.hexdigest()


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def load_file(path: Path) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        return [Document(page_content=page.extract_text() or "", metadata={"source": str(path), "page": i})
                for i, page in enumerate(reader.pages)]
    if suffix == ".docx":
        import docx

        text = "\n\n".join(p.text for p in docx.Document(str(path)).paragraphs)
    elif suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        text = BeautifulSoup(_read_text(path), "html.parser").get_text("\n")
    else:
        text = _read_text(path)
    return [Document(page_content=text, metadata={"source": str(path)})]


def load_corpus_documents(corpus: Path) -> list[Document]:
    """Every readable file of ``corpus`` as LangChain documents; unreadable files are logged and skipped."""
    documents: list[Document] = []
    for path in corpus_files(corpus):
        try:
            documents += load_file(path)
        except Exception as exc:  # a newcomer's loop would crash; we skip and say so
            log.warning("Baseline loader skipped %s: %s", path, exc)
    return documents


def split_corpus(documents: Sequence[Document]) -> list[Document]:
    """``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``, empty chunks dropped."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return [d for d in splitter.split_documents(list(documents)) if d.page_content.strip()]


def source_name(document: Document) -> str:
    return Path(str(document.metadata.get("source", ""))).name
