"""Loaders and cleaning on real files: generated PDFs/DOCX/HTML and the shared corpus."""

from __future__ import annotations

import json
import re
import shutil
from functools import lru_cache
from pathlib import Path

import pytest
from pypdf import PdfReader

from ingest.clean import drop_repeated_lines, drop_web_furniture, repair_pdf_text
from ingest.loaders import load_document
from ingest.types import IngestError, LoadedDocument
from pdf_fixtures import (
    CORPUS,
    corpus_paragraphs,
    make_docx,
    make_encrypted_pdf,
    make_html_named_pdf,
    make_html_with_scripts,
    make_image_only_pdf,
    make_paginated_pdf,
    make_truncated_pdf,
    merge_pdfs,
    write_encoded_text,
)

DEV_SET = Path("/work/shared/eval/dev.jsonl")
HEADER = "ASEF LinkUp Report 2024"
HYPHENATED = "cultural"
PAGE_FOOTER = re.compile(r"Page \d+ of \d+")


def squash(text: str) -> str:
    return " ".join(text.split())


def all_text(document: LoadedDocument) -> str:
    return "\n\n".join(page.text for page in document.pages)


# --------------------------------------------------------------------------- paginated PDF


@pytest.fixture(scope="module")
def paragraphs_by_page() -> list[list[str]]:
    paragraphs = corpus_paragraphs(8)
    return [paragraphs[i : i + 2] for i in range(0, 8, 2)]


@pytest.fixture(scope="module")
def report_pdf(tmp_path_factory: pytest.TempPathFactory, paragraphs_by_page: list[list[str]]) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    return make_paginated_pdf(path, paragraphs_by_page, header=HEADER, hyphenate_word=HYPHENATED)


@pytest.fixture(scope="module")
def report(report_pdf: Path) -> LoadedDocument:
    return load_document(report_pdf)


def test_pdf_pages_carry_their_page_numbers(report: LoadedDocument, paragraphs_by_page: list[list[str]]) -> None:
    assert [page.number for page in report.pages] == [1, 2, 3, 4]
    by_number = {page.number: squash(page.text) for page in report.pages}
    for number, paragraphs in enumerate(paragraphs_by_page, start=1):
        for paragraph in paragraphs:
            assert squash(paragraph) in by_number[number]
            others = [n for n in by_number if n != number]
            assert all(squash(paragraph) not in by_number[n] for n in others)


def test_pdf_paragraph_known_to_be_on_page_2(report: LoadedDocument, paragraphs_by_page: list[list[str]]) -> None:
    page_2 = next(page for page in report.pages if page.number == 2)
    assert paragraphs_by_page[1][0] in page_2.text


def test_pdf_running_header_and_page_footer_are_removed(report_pdf: Path, report: LoadedDocument) -> None:
    raw = PdfReader(report_pdf).pages[1].extract_text()
    assert HEADER in raw and "Page 2 of 4" in raw  # the fixture really has them
    for page in report.pages:
        assert HEADER not in page.text
        assert not PAGE_FOOTER.search(page.text)


def test_pdf_hyphenated_word_is_rejoined(report_pdf: Path, report: LoadedDocument) -> None:
    raw = PdfReader(report_pdf).pages[0].extract_text()
    assert "cultu-\nral" in raw  # the fixture really breaks the word at a line end
    text = all_text(report)
    assert "cultu-" not in text and "cultu ral" not in text


def test_pdf_wrapped_lines_become_one_paragraph_each(
    report: LoadedDocument, paragraphs_by_page: list[list[str]]
) -> None:
    for page, paragraphs in zip(report.pages, paragraphs_by_page):
        assert page.text.split("\n\n") == paragraphs


def test_pdf_metadata(report: LoadedDocument) -> None:
    assert report.file_metadata == {
        "title": "How Do We Navigate Cultural Diplomacy?",
        "publisher": "Asia-Europe Foundation (ASEF)",
        "year": 2024,
    }
    assert report.unreadable_pages == [] and report.ocr_pages == [] and report.warnings == []


def test_pdf_encrypted_with_empty_user_password_loads(tmp_path: Path) -> None:
    document = load_document(make_encrypted_pdf(tmp_path / "open.pdf", user_password=""))
    first, second = corpus_paragraphs(2)
    assert [page.number for page in document.pages] == [1, 2]
    assert first in document.pages[0].text and second in document.pages[1].text


def test_pdf_scanned_page_without_ocr_is_listed_as_unreadable(tmp_path: Path) -> None:
    text_page = make_paginated_pdf(tmp_path / "text.pdf", [corpus_paragraphs(1)])
    scan = make_image_only_pdf(tmp_path / "scan.pdf", ["Cultural heritage diplomacy"])
    document = load_document(merge_pdfs(tmp_path / "mixed.pdf", [text_page, scan]), ocr="off")
    assert [page.number for page in document.pages] == [1]
    assert document.unreadable_pages == [2]
    assert any("page 2 skipped: no extractable text" in warning for warning in document.warnings)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_pdf_image_only_pages_are_ocrd(tmp_path: Path) -> None:
    path = make_image_only_pdf(tmp_path / "scan.pdf", ["Cultural heritage diplomacy", "Prague workshop 2024"], pages=2)
    assert not PdfReader(path).pages[0].extract_text().strip()  # no text layer at all
    document = load_document(path, ocr="auto")
    assert document.ocr_pages == [1, 2]
    assert document.unreadable_pages == []
    assert [page.number for page in document.pages] == [1, 2]
    assert "heritage" in document.pages[1].text.lower()
    assert "prague" in document.pages[0].text.lower()


# --------------------------------------------------------------------------- files that must be refused


def _oversized(tmp_path: Path) -> Path:
    path = tmp_path / "huge.pdf"
    with path.open("wb") as handle:
        handle.truncate(120 * 1024 * 1024)  # sparse: costs no disk, only os.stat sees the size
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    return path


def _binary_txt(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def _control_chars_txt(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(1, 9)) * 200)  # valid UTF-8, but not text
    return path


def _pdf_as_txt(tmp_path: Path) -> Path:
    source = make_paginated_pdf(tmp_path / "real.pdf", [corpus_paragraphs(1)])
    path = tmp_path / "report.txt"
    path.write_bytes(source.read_bytes())
    return path


def _html_as_docx(tmp_path: Path) -> Path:
    path = tmp_path / "report.docx"
    make_html_named_pdf(path)
    return path


def _unsupported(tmp_path: Path) -> Path:
    path = tmp_path / "report.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0 old word file")
    return path


BAD_FILES = [
    pytest.param(_oversized, ["file is 120.0 MB", "over the 100 MB limit", "POLICYLAB_MAX_FILE_MB"], id="too-big"),
    pytest.param(_empty, ["empty file (0 bytes)"], id="empty"),
    pytest.param(_unsupported, ["unsupported file type .doc", ".pdf", ".docx", ".md", ".html"], id="unsupported"),
    pytest.param(lambda tmp: make_html_named_pdf(tmp / "report.pdf"), ["not a PDF", "HTML"], id="html-named-pdf"),
    pytest.param(lambda tmp: make_truncated_pdf(tmp / "cut.pdf"), ["damaged or truncated PDF"], id="truncated"),
    pytest.param(
        lambda tmp: make_encrypted_pdf(tmp / "locked.pdf", user_password="s3cret"),
        ["encrypted PDF", "password is required", "remove the protection"],
        id="password",
    ),
    pytest.param(_binary_txt, ["not a text file", "binary"], id="binary-txt"),
    pytest.param(_control_chars_txt, ["not a text file"], id="control-chars-txt"),
    pytest.param(_pdf_as_txt, ["not a text file", "looks like a PDF"], id="pdf-named-txt"),
    pytest.param(_html_as_docx, ["not a DOCX file", "HTML"], id="html-named-docx"),
    pytest.param(lambda tmp: tmp / "missing.pdf", ["file not found"], id="missing"),
]


@pytest.mark.parametrize(("make", "keywords"), BAD_FILES)
def test_bad_files_raise_ingest_error_with_specific_reason(tmp_path: Path, make, keywords: list[str]) -> None:
    with pytest.raises(IngestError) as caught:
        load_document(make(tmp_path))
    for keyword in keywords:
        assert keyword in caught.value.reason
    assert "Traceback" not in caught.value.reason


def test_scanned_pdf_without_ocr_names_the_pages_and_the_fix(tmp_path: Path) -> None:
    path = make_image_only_pdf(tmp_path / "scan.pdf", ["Cultural heritage diplomacy"], pages=3)
    with pytest.raises(IngestError) as caught:
        load_document(path, ocr="off")
    reason = caught.value.reason
    assert "no extractable text" in reason and "pages 1-3" in reason and "tesseract" in reason


def test_size_is_checked_against_the_given_limit(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"cultural diplomacy\n" * 120_000)  # about 2.2 MB
    with pytest.raises(IngestError, match=r"file is 2\.2 MB, over the 1 MB limit"):
        load_document(path, max_file_mb=1)
    assert load_document(path, max_file_mb=5).pages


# --------------------------------------------------------------------------- text encodings


def test_cp1252_text_decodes(tmp_path: Path) -> None:
    text = "Le café – “quotes” and the naïve façade’s rôle — très bien.\n"
    document = load_document(write_encoded_text(tmp_path / "note.txt", text, "cp1252"))
    assert document.pages[0].text == text.rstrip("\n")
    assert "café – “quotes”" in document.pages[0].text


def test_cp1252_article_with_sparse_accents_decodes(tmp_path: Path) -> None:
    source = CORPUS / "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"
    original = "café – “quotes”\n" + source.read_text(encoding="utf-8")
    document = load_document(write_encoded_text(tmp_path / "wvr.txt", original, "cp1252"))
    assert "Culture – The pillar" in document.pages[0].text
    assert "café – “quotes”" in document.pages[0].text


def test_utf16_with_bom_decodes(tmp_path: Path) -> None:
    text = "Cultural diplomacy — café “文化外交” Kryštof Koláček\n"
    document = load_document(write_encoded_text(tmp_path / "note.txt", text, "utf-16"))
    assert document.pages[0].text == text.rstrip("\n")


def test_utf8_bom_and_crlf_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes("\ufeff# Title\r\n\r\nFirst line “quoted”.\r\nSecond line.\r\n".encode("utf-8"))
    text = load_document(path).pages[0].text
    assert text == "# Title\n\nFirst line “quoted”.\nSecond line."


def test_markdown_front_matter_becomes_metadata(tmp_path: Path) -> None:
    path = tmp_path / "brief.md"
    path.write_text(
        "---\ntitle: \"Cultural Diplomacy Brief\"\npublisher: ASEF\nyear: 2024\ndoc_type: brief\n"
        "country: Czech Republic\nregion: Asia-Europe\nlanguage: en\nignored: yes\n---\n\n# Brief\n\nBody text.\n",
        encoding="utf-8",
    )
    document = load_document(path)
    assert document.file_metadata == {
        "title": "Cultural Diplomacy Brief", "publisher": "ASEF", "year": 2024, "doc_type": "brief",
        "country": "Czech Republic", "region": "Asia-Europe", "language": "en",
    }
    assert document.pages[0].text == "# Brief\n\nBody text."
    assert [page.number for page in document.pages] == [None]


# --------------------------------------------------------------------------- DOCX and HTML


def test_docx_headings_paragraphs_and_table_rows_in_order(tmp_path: Path) -> None:
    paragraphs = corpus_paragraphs(3)
    rows = [["Country", "Participants"], ["Czech Republic", "2"], ["Japan", "2"]]
    document = load_document(make_docx(tmp_path / "report.docx", "Key Learnings", paragraphs, rows))
    text = document.pages[0].text
    lines = text.split("\n")
    assert lines[0] == "# Key Learnings"
    table_at = lines.index("Country | Participants")
    assert lines[table_at : table_at + 3] == ["Country | Participants", "Czech Republic | 2", "Japan | 2"]
    assert text.index(paragraphs[0]) < text.index("Country | Participants") < text.index("## Recommendations")
    assert text.index("## Recommendations") < text.index(paragraphs[1]) < text.index(paragraphs[2])
    assert document.file_metadata == {
        "title": "Key Learnings", "publisher": "Asia-Europe Foundation (ASEF)", "year": 2024,
    }
    assert [page.number for page in document.pages] == [None]


def test_html_keeps_text_and_drops_scripts_handlers_and_furniture(tmp_path: Path) -> None:
    paragraphs = corpus_paragraphs(2)
    document = load_document(make_html_with_scripts(tmp_path / "page.html", paragraphs))
    text = document.pages[0].text
    forbidden = [
        "SCRIPT-PAYLOAD", "trackingSecret", "track(", "alert", "INLINE-SCRIPT-OUTPUT", "document.write",
        "onclick", "onload", "onmouseover", "stealCookies", "evilHandler", "font-family", "secret-style",
        "NAV-MENU-ITEM", "SITE-BANNER", "NOSCRIPT-TEXT", "IFRAME-TEXT", "ASIDE-TEXT", "FOOTER-TEXT",
        "HIDDEN-TEXT", "ICON-TEXT", "We use cookies", "Facebook X Pinterest", "<", ">",
    ]
    for needle in forbidden:
        assert needle not in text, needle
    lines = text.split("\n")
    assert "# How Do We Navigate Cultural Diplomacy?" in lines
    assert "## Key Learnings" in lines
    assert all(paragraph in lines for paragraph in paragraphs)
    assert "- Impromptu Networking" in lines and "- Case Clinics" in lines
    assert "Country | Participants" in lines and "Czech Republic | 2" in lines
    assert document.file_metadata == {"title": "How Do We Navigate Cultural Diplomacy?"}


# --------------------------------------------------------------------------- the real corpus


def _gold_quotes() -> list[tuple[str, str]]:
    quotes = []
    for line in DEV_SET.read_text(encoding="utf-8").splitlines():
        if line.strip():
            quotes += [(gold["source"], gold["quote"]) for gold in json.loads(line).get("gold", [])]
    return quotes


@lru_cache(maxsize=None)
def _corpus_text(name: str) -> str:
    return all_text(load_document(CORPUS / name))


@pytest.mark.parametrize(("source", "quote"), _gold_quotes(), ids=lambda value: value[:40])
def test_corpus_keeps_every_gold_quote(source: str, quote: str) -> None:
    text = _corpus_text(source)
    assert squash(quote) in squash(text)
    if source.endswith(".md"):
        assert quote in text


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")) + sorted(CORPUS.glob("*.md")), ids=lambda p: p.name[:30])
def test_corpus_text_is_the_source_minus_whole_lines(path: Path) -> None:
    """Cleaning only removes whole lines: every kept line is a source line, in order."""
    source_lines = iter(path.read_text(encoding="utf-8").split("\n"))
    for line in _corpus_text(path.name).split("\n"):
        assert any(line == candidate for candidate in source_lines), line


def test_web_furniture_is_gone_from_the_article() -> None:
    lines = _corpus_text("cultural-diplomacy-long-term-partnerships-2025.txt").split("\n")
    for furniture in ("ADVERTISEMENT", "Facebook X Pinterest", "Email", "Send by Email", "Related Articles"):
        assert furniture not in lines
    assert lines[-1].startswith("Ultimately, the arc of cultural diplomacy")


def test_trailing_related_news_is_dropped_but_the_article_kept() -> None:
    text = _corpus_text("wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt")
    assert "RELATED NEWS" not in text and "Hanoi Convention" not in text
    assert text.endswith("resilient diplomacy in the new era.")


# --------------------------------------------------------------------------- cleaning functions


@pytest.mark.parametrize(
    ("raw", "repaired"),
    [
        ("the cultu-\nral sector", "the cultural sector"),
        ("a cross-\nborder project", "a cross-border project"),
        ("the Asia-\nEurope lab", "the Asia-Europe lab"),
        ("held on 10-\n13 June", "held on 10-13 June"),
        ("a government-led plan and a government-\nled one", "a government-led plan and a government-led one"),
        (
            "Principles\nCultural relations must be viewed within\nboth local contexts.",
            "Principles\nCultural relations must be viewed within both local contexts.",
        ),
        ("first   line\nsecond line\n\n\n\nNEW SECTION\nnext para", "first line second line\n\nNEW SECTION\nnext para"),
        ("Intro text.\n2.1 Scope of the lab\nThe lab covers", "Intro text.\n2.1 Scope of the lab\nThe lab covers"),
        ("• first item\ncontinued\n• second item", "• first item continued\n• second item"),
        ("1 Introduction . . . . 1\n2 Structure . . . . 2\n2.1 Syntax. . . . 2",) * 2,
    ],
    ids=[
        "word-break", "compound-prefix", "capital", "digits", "seen-hyphenated", "heading", "spaces", "numbered",
        "bullets", "contents",
    ],
)
def test_repair_pdf_text(raw: str, repaired: str) -> None:
    assert repair_pdf_text(raw) == repaired


def test_drop_repeated_lines_removes_running_header_footer_and_page_numbers() -> None:
    words = " ".join(corpus_paragraphs(4)).split()
    bodies = ["\n".join(" ".join(words[i + j * 6 : i + j * 6 + 6]) for j in range(7)) for i in range(0, 4 * 42, 42)]
    pages = [f"Annual Report 2024\n{body}\nPage {n} of 4" for n, body in enumerate(bodies, start=1)]
    pages[2] = f"Annual Report 2024\n\nA table of 3 rows.\n{bodies[2]}\n\n  17  "
    pages[3] = f"iv\n{bodies[3]}"
    cleaned = drop_repeated_lines(pages)
    assert cleaned[0] == bodies[0]
    assert cleaned[2] == f"A table of 3 rows.\n{bodies[2]}"
    assert cleaned[3] == bodies[3]


def test_drop_repeated_lines_keeps_lines_on_too_few_pages() -> None:
    pages = ["Introduction\nText one.", "Other heading\nText two.", "Third heading\nText three."]
    assert drop_repeated_lines(pages) == pages
    two_pages = ["Annual Report\nText one.", "Annual Report\nText two."]
    assert drop_repeated_lines(two_pages) == two_pages


def test_drop_web_furniture_keeps_sentences_that_mention_furniture_words() -> None:
    text = (
        "Share\nThe campaign ran on Facebook and X to share stories.\nADVERTISEMENT\n"
        "Print\nThis website uses cookies to improve your experience.\nCookies are small files.\nX"
    )
    kept = "The campaign ran on Facebook and X to share stories.\nCookies are small files.\nX"
    assert drop_web_furniture(text) == kept


def test_drop_web_furniture_keeps_related_heading_followed_by_long_text() -> None:
    text = "Intro.\nRelated news\n" + "A long paragraph that is clearly content and not a list of links. " * 5
    assert drop_web_furniture(text) == text
