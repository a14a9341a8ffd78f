"""Turn a file into pages of clean text: one small loader per format, chosen by suffix.

Every problem a user can fix (too big, empty, wrong format, damaged, encrypted,
scanned without OCR) is raised as ``IngestError`` with a reason that says what to do.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.clean import drop_repeated_lines, drop_web_furniture, normalise_newlines, repair_pdf_text
from ingest.types import IngestError, LoadedDocument, Page

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".pdf", ".docx", ".txt", ".md", ".markdown", ".html", ".htm")
OCR_TIMEOUT_S = 120
_MIN_OCR_IMAGE_PX = 64
_SNIFF_BYTES = 1024


def load_document(path: Path, max_file_mb: float = 100.0, ocr: str = "auto") -> LoadedDocument:
    """Load ``path`` into pages of cleaned text plus the metadata the file itself carries.

    ``ocr`` is ``"auto"`` (OCR pages without a text layer when ``tesseract`` is on PATH)
    or ``"off"``. Raises ``IngestError`` for any file that cannot be read.
    """
    if ocr not in ("auto", "off"):
        raise ValueError(f"ocr must be 'auto' or 'off', not {ocr!r}")
    path = Path(path)
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        shown = suffix or "(no extension)"
        raise IngestError(
            f"unsupported file type {shown}; supported types are {', '.join(SUPPORTED_SUFFIXES)} "
            "(convert the file to one of them)"
        )
    check_size(path, max_file_mb)
    logger.debug("loading %s with the %s loader", path, suffix)
    return loader(path, ocr)


def check_size(path: Path, max_file_mb: float) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise IngestError("file not found; check the path") from None
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror}); check its permissions") from None
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file; give the path of a document")
    size_mb = info.st_size / (1024 * 1024)
    if size_mb > max_file_mb:
        raise IngestError(
            f"file is {size_mb:.1f} MB, over the {max_file_mb:g} MB limit (POLICYLAB_MAX_FILE_MB); "
            "split the file or raise the limit"
        )
    if info.st_size == 0:
        raise IngestError("empty file (0 bytes)")


def _read(path: Path, limit: int = -1) -> bytes:
    """The file's bytes (the first ``limit`` of them when given)."""
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise IngestError(f"cannot read the file ({exc.strerror}); check its permissions") from None


def describe_content(head: bytes) -> str:
    """What the first bytes of a file look like, for error messages ("HTML", "a PNG image")."""
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    signatures = (
        (b"%pdf", "a PDF"),
        (b"pk\x03\x04", "a ZIP archive (a DOCX or other Office file?)"),
        (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.doc/.xls)"),
        (b"\x89png", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"gif8", "a GIF image"),
        (b"{\\rtf", "an RTF document"),
        (b"<?xml", "XML"),
    )
    for magic, what in signatures:
        if lowered.startswith(magic):
            return what
    if any(tag in lowered for tag in (b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML"
    if b"\x00" in head:
        return "binary data"
    return "plain text"


# --------------------------------------------------------------------------- PDF


def _load_pdf(path: Path, ocr: str) -> LoadedDocument:
    """One Page per PDF page with text (OCR'd when needed); headers and footers dropped, lines repaired."""
    head = _read(path, _SNIFF_BYTES)
    if b"%PDF" not in head:
        raise IngestError(
            f"not a PDF: the content looks like {describe_content(head)}; "
            "download or export the real PDF, or give the file its right extension"
        )
    reader = _open_pdf(path)
    warnings: list[str] = []
    texts, failures = _extract_pages(reader, warnings)
    blank = [n for n in range(1, len(reader.pages) + 1) if n not in texts]
    ocr_pages = _ocr_pages(reader, blank, ocr, warnings, texts)
    unreadable = [n for n in blank if n not in ocr_pages]
    if not texts:
        raise IngestError(_no_text_reason(unreadable, failures, ocr))
    if unreadable:
        warnings.append(f"{_pages_label(unreadable)} skipped: {_why_unreadable(ocr)}")
    numbers = sorted(texts)
    cleaned = [repair_pdf_text(t) for t in drop_repeated_lines([texts[n] for n in numbers])]
    return LoadedDocument(
        path=path,
        pages=[Page(number=n, text=t) for n, t in zip(numbers, cleaned) if t],
        file_metadata=_pdf_metadata(reader),
        unreadable_pages=unreadable,
        ocr_pages=ocr_pages,
        warnings=warnings,
    )


def _open_pdf(path: Path) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF: a password is required; remove the protection and ingest again")
        len(reader.pages)  # parses the page tree now, so damage shows up here
    except IngestError:
        raise
    except DependencyError as exc:
        raise IngestError(f"encrypted PDF that needs an extra package to open ({exc}); remove the protection") from None
    except Exception as exc:  # pypdf raises many types on damaged files; the user needs one sentence
        logger.debug("pypdf failed on %s", path, exc_info=True)
        raise IngestError(f"damaged or truncated PDF ({_brief(exc)}); download or export it again") from None
    return reader


def _extract_pages(reader: Any, warnings: list[str]) -> tuple[dict[int, str], dict[int, str]]:
    """Text of each page with any (page number -> text), and the pages whose extraction failed."""
    texts: dict[int, str] = {}
    failures: dict[int, str] = {}
    for number in range(1, len(reader.pages) + 1):
        visitor = _GapMarker()
        try:
            reader.pages[number - 1].extract_text(visitor_text=visitor)
        except Exception as exc:  # a damaged content stream spoils one page, not the file
            logger.debug("text extraction failed on page %d", number, exc_info=True)
            failures[number] = _brief(exc)
            warnings.append(f"page {number}: text extraction failed ({failures[number]})")
            continue
        text = visitor.text()
        if _has_text(text):
            texts[number] = text
    return texts, failures


class _GapMarker:
    """A pypdf ``visitor_text`` that rebuilds the page text with a blank line at paragraph gaps.

    pypdf's plain extraction ends every text line with one newline. A line that starts
    clearly further down than the usual line spacing of the page (1.4 times the median),
    or back up the page (a new column), starts a new paragraph.
    """

    GAP_FACTOR = 1.4

    def __init__(self) -> None:
        self.pieces: list[tuple[str, float | None]] = []

    def __call__(self, text: str, cm: Any, tm: Any, font_dict: Any, font_size: Any) -> None:
        y = None
        if text.strip():
            y = float(tm[4]) * float(cm[1]) + float(tm[5]) * float(cm[3]) + float(cm[5])
        self.pieces.append((text, y))

    def text(self) -> str:
        line_starts = self._line_starts()
        drops = [a - b for a, b in zip(line_starts, line_starts[1:]) if a - b > 1.0]
        spacing = statistics.median(drops) if len(drops) >= 2 else None
        out: list[str] = []
        last_y: float | None = None
        new_line = False
        for text, y in self.pieces:
            if y is not None:
                if new_line and spacing and last_y is not None:
                    drop = last_y - y
                    if drop > spacing * self.GAP_FACTOR or drop < -spacing / 2:
                        out.append("\n")
                if new_line or last_y is None:
                    last_y = y
                new_line = False
            if text.endswith("\n"):
                new_line = True
            out.append(text)
        return "".join(out)

    def _line_starts(self) -> list[float]:
        starts: list[float] = []
        new_line = True
        for text, y in self.pieces:
            if y is not None and new_line:
                starts.append(y)
                new_line = False
            if text.endswith("\n"):
                new_line = True
        return starts


def _has_text(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _ocr_pages(reader: Any, numbers: list[int], ocr: str, warnings: list[str], texts: dict[int, str]) -> list[int]:
    """OCR the images of the pages in ``numbers``; store the text in ``texts``, return the OCR'd pages."""
    tesseract = shutil.which("tesseract")
    if ocr != "auto" or tesseract is None or not numbers:
        return []
    done: list[int] = []
    for number in numbers:
        text = _ocr_page(reader.pages[number - 1], tesseract, number, warnings)
        if _has_text(text):
            texts[number] = text
            done.append(number)
    if done:
        logger.info("OCR'd %s", _pages_label(done))
    return done


def _ocr_page(page: Any, tesseract: str, number: int, warnings: list[str]) -> str:
    """Run ``tesseract <image> stdout`` on each sizeable image embedded in the page."""
    texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="policylab-ocr-") as tmp:
        try:
            images = list(page.images)
        except Exception as exc:  # pypdf cannot list images of some damaged pages
            warnings.append(f"page {number}: its images could not be read for OCR ({_brief(exc)})")
            return ""
        for index, image in enumerate(images):
            target = Path(tmp) / f"page{number}-{index}.png"
            try:
                pil = image.image
                if pil is None or min(pil.size) < _MIN_OCR_IMAGE_PX:
                    continue
                if pil.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
                    pil = pil.convert("RGB")
                pil.save(target)
            except Exception as exc:  # pypdf/Pillow cannot decode every image filter (JBIG2, ...)
                warnings.append(f"page {number}: an image could not be decoded for OCR ({_brief(exc)})")
                continue
            texts.append(_tesseract(tesseract, target, number, warnings))
    return "\n\n".join(texts)


def _tesseract(tesseract: str, image: Path, number: int, warnings: list[str]) -> str:
    try:
        result = subprocess.run(
            [tesseract, str(image), "stdout"], capture_output=True, text=True, timeout=OCR_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        warnings.append(f"page {number}: OCR failed ({_brief(exc)})")
        return ""
    if result.returncode != 0:
        warnings.append(f"page {number}: tesseract failed ({' '.join(result.stderr.split())[:120]})")
        return ""
    return result.stdout


def _no_text_reason(unreadable: list[int], failures: dict[int, str], ocr: str) -> str:
    if not unreadable:
        return "the PDF has no pages"
    pages = _pages_label(unreadable)
    if all(n in failures for n in unreadable):
        first_error = failures[unreadable[0]]
        return f"damaged PDF: text extraction failed on {pages} ({first_error}); download or export it again"
    if ocr == "auto" and shutil.which("tesseract"):
        return (
            f"no extractable text on {pages}, and OCR of their images found none either; "
            "the PDF may be damaged or its scans unreadable: export or scan it again"
        )
    return f"no extractable text (scanned PDF?) on {pages}; {_ocr_hint(ocr)}"


def _why_unreadable(ocr: str) -> str:
    if ocr == "auto" and shutil.which("tesseract"):
        return "no extractable text, and OCR of their images found none either"
    return f"no extractable text (scanned?); {_ocr_hint(ocr)}"


def _ocr_hint(ocr: str) -> str:
    if ocr == "off":
        return "set POLICYLAB_OCR=auto and install tesseract-ocr to OCR them"
    return "install tesseract-ocr to OCR them"


def _pdf_metadata(reader: Any) -> dict[str, Any]:
    try:
        info = reader.metadata or {}
        raw = {key: str(info.get(key) or "").strip() for key in ("/Title", "/Author", "/CreationDate")}
    except Exception:
        logger.debug("unreadable PDF metadata", exc_info=True)
        return {}
    meta: dict[str, Any] = {}
    if raw["/Title"]:
        meta["title"] = raw["/Title"]
    if raw["/Author"]:
        meta["publisher"] = raw["/Author"]
    if match := re.match(r"(?:D:)?(\d{4})", raw["/CreationDate"]):
        meta["year"] = int(match.group(1))
    return meta


def _pages_label(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"pages 1-3, 5"``; ``[4]`` -> ``"page 4"``."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    label = ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)
    return f"page {label}" if len(numbers) == 1 else f"pages {label}"


def _brief(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# --------------------------------------------------------------------------- DOCX


def _load_docx(path: Path, ocr: str) -> LoadedDocument:
    """One Page: paragraphs, ``#`` headings and ``a | b`` table rows in document order."""
    import docx
    from docx.table import Table

    head = _read(path, _SNIFF_BYTES)
    if not head.startswith(b"PK\x03\x04"):
        raise IngestError(
            f"not a DOCX file: the content looks like {describe_content(head)}; "
            "open it in Word or LibreOffice and save it as .docx"
        )
    try:
        document = docx.Document(str(path))
        blocks = [_docx_table(b) if isinstance(b, Table) else _docx_paragraph(b) for b in document.iter_inner_content()]
    except Exception as exc:
        logger.debug("python-docx failed on %s", path, exc_info=True)
        raise IngestError(
            f"damaged DOCX file ({_brief(exc)}); open it in Word or LibreOffice and save it again"
        ) from None
    text = "\n\n".join(block for block in blocks if block)
    if not _has_text(text):
        raise IngestError("the DOCX file contains no text")
    return LoadedDocument(path=path, pages=[Page(number=None, text=text)], file_metadata=_docx_metadata(document))


def _docx_paragraph(paragraph: Any) -> str:
    text = paragraph.text.strip()
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if not text:
        return ""
    if style == "Title":
        return f"# {text}"
    if match := re.fullmatch(r"Heading (\d)", style):
        return f"{'#' * min(int(match.group(1)), 6)} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _docx_table(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            if any(cell._tc is other for other in seen):  # a merged cell repeats itself
                continue
            seen.append(cell._tc)
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _docx_metadata(document: Any) -> dict[str, Any]:
    props = document.core_properties
    meta: dict[str, Any] = {}
    if props.title and props.title.strip():
        meta["title"] = props.title.strip()
    if props.author and props.author.strip():
        meta["publisher"] = props.author.strip()
    if props.created is not None:
        meta["year"] = props.created.year
    return meta


# --------------------------------------------------------------------------- TXT and Markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
FRONT_MATTER_KEYS = ("title", "publisher", "year", "doc_type", "country", "region", "language")


def _load_text(path: Path, ocr: str) -> LoadedDocument:
    """One Page of the file's own lines: only line endings, front matter and furniture lines change."""
    text = normalise_newlines(decode_text(_read(path)))
    metadata: dict[str, Any] = {}
    if path.suffix.lower() in (".md", ".markdown"):
        metadata, text = split_front_matter(text)
    text = drop_web_furniture(text)
    if not _has_text(text):
        raise IngestError("the file contains no text")
    return LoadedDocument(path=path, pages=[Page(number=None, text=text)], file_metadata=metadata)


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8 (BOM or not), UTF-16 with a BOM, else the detected encoding.

    Raises ``IngestError`` when the bytes are not text (undecodable, or full of control
    characters).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text: str | None = data.decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError("invalid UTF-16 text; save the file again as UTF-8") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None if b"\x00" in data[:_SNIFF_BYTES] else _detect_encoding(data)
    if text is None or _control_share(text) > 0.01:
        raise _binary_error(data)
    return text


def _binary_error(data: bytes) -> IngestError:
    return IngestError(
        f"not a text file: the content looks like {describe_content(data[:_SNIFF_BYTES])}; "
        "give the file its right extension or save it as UTF-8 text"
    )


def _detect_encoding(data: bytes) -> str | None:
    """charset-normalizer's guess, except that cp1252 wins a tie.

    With few non-ASCII bytes the detector can pick a DOS code page for what is plainly
    Windows-1252 ("–" read as "¢"); cp1252 is kept when its decoding is at least as
    clean and as coherent a language as the detector's choice.
    """
    from charset_normalizer import from_bytes
    from charset_normalizer.cd import coherence_ratio
    from charset_normalizer.md import mess_ratio

    best = from_bytes(data).best()
    if best is None:
        return None
    guess = str(best)
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        return guess
    if western == guess or best.encoding == "cp1252":
        return guess

    def score(text: str) -> tuple[float, float]:
        sample = text[:20000]
        languages = coherence_ratio(sample)
        return mess_ratio(sample, maximum_threshold=1.0), languages[0][1] if languages else 0.0

    (western_mess, western_lang), (guess_mess, guess_lang) = score(western), score(guess)
    if western_mess <= guess_mess and western_lang >= guess_lang:
        logger.debug("decoding as cp1252 rather than %s", best.encoding)
        return western
    return guess


def _control_share(text: str) -> float:
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    return controls / max(len(text), 1)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---``-delimited ``key: value`` front matter off a Markdown text.

    Returns the known keys (``FRONT_MATTER_KEYS``; ``author`` counts as ``publisher``)
    and the text after the closing ``---``. Text without front matter is returned as is.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    metadata: dict[str, Any] = {}
    for line in match.group(1).split("\n"):
        key, sep, value = line.partition(":")
        key = key.strip().lower().replace("-", "_")
        key = "publisher" if key == "author" else key
        value = value.strip().strip("\"'").strip()
        if sep and key in FRONT_MATTER_KEYS and value:
            metadata[key] = int(value) if key == "year" and value.isdigit() else value
    return metadata, text[match.end() :].lstrip("\n")


# --------------------------------------------------------------------------- HTML

_DROPPED_TAGS = ("script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe",
                 "template", "svg", "canvas", "object", "embed", "button", "select", "head")
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCK_TAGS = frozenset(
    "p div section article main li dd dt blockquote pre figure figcaption table caption tr "
    "ul ol dl address details summary hr body html".split()
)
_LINE_TAGS = frozenset({"li", "tr"})


def _load_html(path: Path, ocr: str) -> LoadedDocument:
    """One Page of the visible article text, without scripts, styles, menus, forms or footers."""
    from bs4 import BeautifulSoup

    data = _read(path)
    if b"\x00" in data[:_SNIFF_BYTES] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _binary_error(data)
    soup = BeautifulSoup(data, "html.parser")
    metadata: dict[str, Any] = {}
    if soup.title and soup.title.get_text(strip=True):
        metadata["title"] = " ".join(soup.title.get_text().split())
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
            tag.decompose()
    for tag in soup.find_all(True):
        tag.attrs = {}
    text = drop_web_furniture(_html_text(soup))
    if not _has_text(text):
        raise IngestError("the HTML page contains no text once scripts, menus and footers are removed")
    return LoadedDocument(path=path, pages=[Page(number=None, text=text)], file_metadata=metadata)


def _html_text(soup: Any) -> str:
    """Headings as ``#`` lines, paragraphs as blocks, list items and table rows as lines."""
    blocks: list[tuple[str, str]] = []  # (kind, line)
    _walk_html(soup, blocks, [])
    out: list[str] = []
    for i, (kind, line) in enumerate(blocks):
        if i:
            out.append("\n" if kind == blocks[i - 1][0] and kind in _LINE_TAGS else "\n\n")
        out.append(line)
    return "".join(out)


def _walk_html(node: Any, blocks: list[tuple[str, str]], buffer: list[str], kind: str = "p") -> None:
    from bs4.element import NavigableString, PreformattedString, Tag

    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, PreformattedString):  # comments, doctype, CDATA
                buffer.append(str(child) if kind == "pre" else re.sub(r"\s+", " ", str(child)))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in _HEADINGS:
            _flush(blocks, buffer, kind)
            title = " ".join(child.get_text(" ").split())
            if title:
                blocks.append(("h", f"{'#' * _HEADINGS[name]} {title}"))
        elif name == "br":
            buffer.append("\n")
        elif name == "tr":
            _flush(blocks, buffer, kind)
            cells = [" ".join(cell.get_text(" ").split()) for cell in child.find_all(["td", "th"], recursive=False)]
            if any(cells):
                blocks.append(("tr", " | ".join(cells)))
        elif name in _BLOCK_TAGS:
            _flush(blocks, buffer, kind)
            inner = name if name in ("li", "pre") else ("li" if kind == "li" else "p")
            _walk_html(child, blocks, buffer, inner)
            _flush(blocks, buffer, inner)
        else:
            _walk_html(child, blocks, buffer, kind)


def _flush(blocks: list[tuple[str, str]], buffer: list[str], kind: str) -> None:
    """Turn the buffered inline text into block lines (``<br>`` and ``<pre>`` newlines split lines)."""
    raw = "".join(buffer)
    buffer.clear()
    for line in raw.split("\n"):
        line = " ".join(line.split())
        if line:
            blocks.append((kind, f"- {line}" if kind == "li" else line))


_LOADERS: dict[str, Callable[[Path, str], LoadedDocument]] = {
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".txt": _load_text,
    ".md": _load_text,
    ".markdown": _load_text,
    ".html": _load_html,
    ".htm": _load_html,
}
