"""Generators of real test files: paginated, encrypted, scanned and broken PDFs, and friends.

The PDFs are written with fpdf2 and carry real pages, so loaders are tested on what
pypdf actually extracts. Page texts are real paragraphs of the ASEF LinkUp 2024 report.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

CORPUS = Path("/work/shared/corpus")
ASEF_REPORT = CORPUS / "asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_LATIN1_FALLBACK = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})


def corpus_paragraphs(count: int, min_chars: int = 200, max_chars: int = 700) -> list[str]:
    """The first ``count`` plain prose paragraphs of the ASEF report (no links or markup)."""
    paragraphs = [" ".join(p.split()) for p in ASEF_REPORT.read_text(encoding="utf-8").split("\n\n")]
    plain = [
        p for p in paragraphs
        if min_chars <= len(p) <= max_chars and p[0].isupper() and not any(mark in p for mark in "[]*¹<>#")
    ]
    if len(plain) < count:
        raise ValueError(f"the ASEF report has only {len(plain)} plain paragraphs, {count} wanted")
    return plain[:count]


def hyphenate(paragraph: str, word: str) -> str:
    """Break the first ``word`` of ``paragraph`` as "cultu-" at a line end and "ral" on the next."""
    start = paragraph.index(word)
    cut = max(2, len(word) - 3)
    return f"{paragraph[:start]}{word[:cut]}-\n{word[cut:]}{paragraph[start + len(word):]}"


class _ReportPDF(FPDF):
    """An A4 PDF with a running header and an optional "Page N of M" footer."""

    def __init__(self, header_text: str, page_numbers: bool) -> None:
        super().__init__(format="A4")
        self.header_text = header_text
        self.page_numbers = page_numbers
        self.font_name = _use_font(self)

    def header(self) -> None:
        if self.header_text:
            self.set_font(self.font_name, size=9)
            self.cell(0, 8, _text(self, self.header_text), new_x="LMARGIN", new_y="NEXT", align="R")
            self.ln(6)
            self.set_font(self.font_name, size=11)

    def footer(self) -> None:
        if self.page_numbers:
            self.set_y(-15)
            self.set_font(self.font_name, size=9)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")


def _use_font(pdf: FPDF) -> str:
    if DEJAVU.exists():
        pdf.add_font("DejaVu", "", str(DEJAVU))
        return "DejaVu"
    return "Helvetica"


def _text(pdf: FPDF, text: str) -> str:
    """Core fonts are latin-1 only: map typographic punctuation when DejaVu is missing."""
    if getattr(pdf, "font_name", "") == "DejaVu":
        return text
    return text.translate(_LATIN1_FALLBACK).encode("latin-1", "replace").decode("latin-1")


def make_paginated_pdf(
    path: Path,
    paragraphs_by_page: list[list[str]],
    header: str = "ASEF LinkUp Report 2024",
    footer_with_page_numbers: bool = True,
    hyphenate_word: str | None = None,
) -> Path:
    """One PDF page per entry of ``paragraphs_by_page``, with a running header and footer.

    When ``hyphenate_word`` is given, its first occurrence on each page is broken with a
    hyphen at a line end. Each page's paragraphs must fit on one A4 page.
    """
    pdf = _ReportPDF(header, footer_with_page_numbers)
    pdf.set_title("How Do We Navigate Cultural Diplomacy?")
    pdf.set_author("Asia-Europe Foundation (ASEF)")
    pdf.set_creation_date(datetime(2024, 9, 1, tzinfo=timezone.utc))
    pdf.set_auto_page_break(True, margin=20)
    for paragraphs in paragraphs_by_page:
        pdf.add_page()
        pdf.set_font(pdf.font_name, size=11)
        broken = False
        for paragraph in paragraphs:
            if hyphenate_word and not broken and hyphenate_word in paragraph:
                paragraph, broken = hyphenate(paragraph, hyphenate_word), True
            pdf.multi_cell(0, 6, _text(pdf, paragraph), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(5)
    pdf.output(str(path))
    if len(_page_count(path)) != len(paragraphs_by_page):
        raise ValueError("the paragraphs of a page did not fit on one PDF page")
    return path


def _page_count(path: Path) -> list[object]:
    from pypdf import PdfReader

    return list(PdfReader(path).pages)


def make_encrypted_pdf(path: Path, user_password: str = "", owner_password: str = "owner-secret") -> Path:
    """A two-page report encrypted with AES-256; an empty ``user_password`` opens without one."""
    from pypdf import PdfWriter

    plain = path.with_suffix(".plain.pdf")
    make_paginated_pdf(plain, [corpus_paragraphs(2)[:1], corpus_paragraphs(2)[1:]])
    writer = PdfWriter(clone_from=plain)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    with path.open("wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path


def make_image_only_pdf(path: Path, lines: list[str], pages: int = 1) -> Path:
    """A scanned-looking PDF: each page is one image of rendered ``lines``, with no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(DEJAVU), 44) if DEJAVU.exists() else ImageFont.load_default(44)
    image = Image.new("RGB", (1700, 120 + 80 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((80, 60 + 80 * i), line, fill="black", font=font)
    pdf = FPDF(format="A4")
    for _ in range(pages):
        pdf.add_page()
        pdf.image(image, x=10, y=20, w=190)
    pdf.output(str(path))
    return path


def make_truncated_pdf(path: Path, keep: float = 0.6) -> Path:
    """A real three-page PDF cut after ``keep`` of its bytes, as an interrupted download."""
    whole = path.with_suffix(".whole.pdf")
    paragraphs = corpus_paragraphs(3)
    make_paginated_pdf(whole, [[p] for p in paragraphs])
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    whole.unlink()
    return path


def make_html_named_pdf(path: Path) -> Path:
    """A web page saved under a .pdf name (what a failed download often is)."""
    path.write_text(
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
        "<body><h1>Not Found</h1><p>The requested report was not found.</p></body></html>\n",
        encoding="utf-8",
    )
    return path


def make_docx(path: Path, heading: str, paragraphs: list[str], table_rows: list[list[str]]) -> Path:
    """A DOCX with a Heading 1, then the first paragraph, a table, then the other paragraphs."""
    import docx

    document = docx.Document()
    document.core_properties.title = heading
    document.core_properties.author = "Asia-Europe Foundation (ASEF)"
    document.core_properties.created = datetime(2024, 9, 1, tzinfo=timezone.utc)
    document.add_heading(heading, level=1)
    document.add_paragraph(paragraphs[0])
    table = document.add_table(rows=len(table_rows), cols=len(table_rows[0]))
    for row, values in zip(table.rows, table_rows):
        for cell, value in zip(row.cells, values):
            cell.text = value
    document.add_heading("Recommendations", level=2)
    for paragraph in paragraphs[1:]:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_encoded_text(path: Path, text: str, encoding: str) -> Path:
    """``text`` written in ``encoding`` ("cp1252", or "utf-16", which writes a BOM)."""
    path.write_bytes(text.encode(encoding))
    return path


def make_html_with_scripts(path: Path, paragraphs: list[str]) -> Path:
    """An article page wrapped in scripts, inline handlers, a menu, a cookie form and a footer."""
    body = "\n".join(f'<p onclick="track(\'para{i}\')">{p}</p>' for i, p in enumerate(paragraphs))
    path.write_text(
        f"""<!DOCTYPE html>
<html><head><title>How Do We Navigate Cultural Diplomacy?</title>
<style>body {{ font-family: serif; }} .secret-style {{ color: red; }}</style>
<script>var trackingSecret = "SCRIPT-PAYLOAD"; function track(x) {{ alert(x); }}</script>
</head>
<body onload="stealCookies()">
<nav><a href="/">Home</a> <a href="/news">NAV-MENU-ITEM</a></nav>
<header><div>SITE-BANNER</div></header>
<article>
<h1>How Do We Navigate Cultural Diplomacy?</h1>
<h2 onmouseover="evilHandler()">Key Learnings</h2>
{body}
<ul><li>Impromptu Networking</li><li>Case <b>Clinics</b></li></ul>
<table><tr><th>Country</th><th>Participants</th></tr><tr><td>Czech Republic</td><td>2</td></tr></table>
<p>Facebook X Pinterest</p>
<noscript>NOSCRIPT-TEXT</noscript>
<iframe src="https://ads.example/frame">IFRAME-TEXT</iframe>
<script type="text/javascript">document.write("INLINE-SCRIPT-OUTPUT");</script>
</article>
<form><p>We use cookies to improve your experience.</p><button onclick="accept()">Accept</button></form>
<aside>ASIDE-TEXT</aside>
<div hidden>HIDDEN-TEXT</div><span aria-hidden="true">ICON-TEXT</span>
<footer>FOOTER-TEXT © 2024</footer>
</body></html>
""",
        encoding="utf-8",
    )
    return path


def merge_pdfs(path: Path, parts: list[Path]) -> Path:
    """The pages of ``parts``, in order, as one PDF (e.g. a text page followed by a scan)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(str(part))
    with path.open("wb") as handle:
        writer.write(handle)
    return path
