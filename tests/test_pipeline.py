"""The ingest pipeline end to end, with the real embedder, Chroma and BM25 on small real documents.

Covers: mixed formats with page numbers, idempotent re-ingest, change detection, removal,
bad input next to good input, the size limit, a crash (kill -9) midway, the ingest lock
and private uploads.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock
from pypdf import PdfReader

from assistant.retrieval import Retriever
from conftest import KNOWLEDGE, REPO, make_settings
from ingest.catalog import doc_id_for
from ingest.library import Library
from ingest.pipeline import IngestBusyError, ingest_paths
from pdf_fixtures import (
    corpus_paragraphs,
    make_encrypted_pdf,
    make_html_named_pdf,
    make_image_only_pdf,
    make_paginated_pdf,
    make_truncated_pdf,
    write_encoded_text,
)

POLICYLAB = REPO / ".venv" / "bin" / "policylab"
HAGUE = KNOWLEDGE / "hague-1954-convention-cultural-property-armed-conflict.md"
WVR = KNOWLEDGE / "wvr-culture-pillar-of-comprehensive-diplomacy-vietnam.txt"

MD_NAME = "hague-1954-excerpt.md"
TXT_NAME = "wvr-vietnam-excerpt.txt"
PDF_NAME = "linkup-report.pdf"
HEADER = "Policy Lab Quarterly - Internal Review 2024"
PAGE_FOOTER = re.compile(r"Page \d+ of \d+")
HYPHENATED = "cultural"
# The one paragraph the PDF fixture puts on page 2 only (see _pdf_pages).
PAGE2_SENTENCE = (
    "Striking a balance between bureaucracy, political turnover, the needs of the community "
    "and artistic creativity"
)
# A sentence of the third paragraph of the WVR excerpt (replaced by the change-detection test).
WVR_OLD_SENTENCE = "diplomacy and international integration continue to be identified"
NEW_PARAGRAPH = (
    "In a new exchange programme, water puppet troupes from Thai Binh province will tour Lyon, Kraków and "
    "Tallinn, pairing each performance with workshops on lacquer craft and ca tru singing for local schools."
)
NEW_SENTENCE = "water puppet troupes from Thai Binh province will tour Lyon"


# --------------------------------------------------------------------------- helpers


def squash(text: str) -> str:
    return " ".join(text.split())


def hague_excerpt() -> str:
    """Title, preamble, Chapter I and its Articles 1-2 of the Hague Convention (## / ### headings)."""
    text = HAGUE.read_text(encoding="utf-8")
    end = text.index("### Article 3")
    excerpt = text[:end].rstrip() + "\n"
    assert "## Chapter I" in excerpt and "### Article 1" in excerpt and "### Article 2" in excerpt
    return excerpt


def wvr_paragraphs(count: int = 6) -> list[str]:
    paragraphs = [p.strip() for p in WVR.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return paragraphs[:count]


def wvr_excerpt(count: int = 6) -> str:
    return "\n\n".join(wvr_paragraphs(count)) + "\n"


def _pdf_pages() -> list[list[str]]:
    p = corpus_paragraphs(6)
    return [[p[0], p[3]], [p[1], p[4]], [p[2], p[5]]]


def make_corpus(folder: Path) -> Path:
    """A folder with a Markdown excerpt, a text excerpt and a 3-page PDF with header, footer and hyphenation."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MD_NAME).write_text(hague_excerpt(), encoding="utf-8")
    (folder / TXT_NAME).write_text(wvr_excerpt(), encoding="utf-8")
    make_paginated_pdf(folder / PDF_NAME, _pdf_pages(), header=HEADER, hyphenate_word=HYPHENATED)
    return folder


def statuses(results) -> dict[str, str]:
    return {r.source_file: r.status for r in results}


def all_chunk_texts(settings) -> list[str]:
    """Every chunk text in the library database, whatever the document's status."""
    with sqlite3.connect(settings.library_db) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM chunks")]


def assert_consistent(lib: Library) -> None:
    """SQLite, Chroma and BM25 hold exactly the same chunks."""
    store_ids = sorted(r["chunk_id"] for r in lib.store.chunk_rows())
    assert len(store_ids) == len(set(store_ids))
    assert lib.store.counts()[1] == len(store_ids) == lib.vectors.count()
    chroma_ids: list[str] = []
    for info in lib.store.documents():
        ids = lib.vectors.ids_for_doc(info.doc_id)
        assert len(ids) == len(set(ids)), f"duplicate vector ids for {info.source_file}"
        assert sorted(ids) == sorted(lib.store.chunk_ids(info.doc_id)), info.source_file
        chroma_ids += ids
    assert sorted(chroma_ids) == store_ids
    assert sorted(lib.lexical.chunk_ids) == store_ids


def cli(args: list[str], data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "POLICYLAB_DATA_DIR": str(data_dir), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(POLICYLAB), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=data_dir.parent
    )


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data")


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_corpus(tmp_path / "corpus")


# --------------------------------------------------------------------------- mixed formats


def test_folder_of_md_txt_and_pdf_is_indexed_with_pages_and_clean_text(corpus, settings):
    results = ingest_paths([corpus], settings)

    assert statuses(results) == {MD_NAME: "indexed", TXT_NAME: "indexed", PDF_NAME: "indexed"}
    for r in results:
        assert r.pages > 0 and r.chunks > 0 and not r.reason, r
    assert next(r for r in results if r.source_file == PDF_NAME).pages == 3

    # The PDF really carries what the loader must remove or repair.
    raw_pages = [page.extract_text() for page in PdfReader(corpus / PDF_NAME).pages]
    assert all(HEADER in raw for raw in raw_pages) and "Page 2 of 3" in raw_pages[1]
    assert f"{HYPHENATED[:5]}-\n{HYPHENATED[5:]}" in raw_pages[0]

    lib = Library.open(settings)
    assert_consistent(lib)
    pdf_id = doc_id_for(PDF_NAME)
    pdf_rows = [r for r in lib.store.chunk_rows([pdf_id])]
    assert {r["page_number"] for r in pdf_rows} == {1, 2, 3}
    for row in pdf_rows:
        assert HEADER not in row["text"] and not PAGE_FOOTER.search(row["text"]), row["text"]
    for number, text in lib.store.page_texts(pdf_id):
        assert HEADER not in text and not PAGE_FOOTER.search(text), (number, text)
        assert "cultu-" not in text and "cultu ral" not in text

    # Every paragraph, including the hyphen-broken "cultu-/ral", is found whole on its own page.
    for number, paragraphs in enumerate(_pdf_pages(), start=1):
        page_chunks = [squash(r["text"]) for r in pdf_rows if r["page_number"] == number]
        for paragraph in paragraphs:
            assert any(squash(paragraph) in chunk for chunk in page_chunks), (number, paragraph[:60])

    # Markdown headings become the heading path of the chunks under them.
    md_sections = {r["section"] for r in lib.store.chunk_rows([doc_id_for(MD_NAME)])}
    assert any("Chapter I — General Provisions" in s and "Article 1 — Definition" in s for s in md_sections), md_sections
    assert any("Article 2 — Protection of cultural property" in s for s in md_sections), md_sections

    passages = Retriever(settings).search(PAGE2_SENTENCE, k=3)
    assert passages, "search found nothing"
    top = passages[0]
    assert top.source_file == PDF_NAME and top.page == 2, [(p.source_file, p.page) for p in passages]
    assert PAGE2_SENTENCE in squash(top.text)


# --------------------------------------------------------------------------- idempotency


def test_second_ingest_of_same_folder_is_unchanged_and_embeds_nothing(corpus, settings, monkeypatch):
    from assistant.embeddings import E5Embeddings
    from ingest.chunk import sentence_units

    calls: list[int] = []
    real = E5Embeddings.embed_documents

    def counting(self, texts):
        calls.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(E5Embeddings, "embed_documents", counting)

    first = ingest_paths([corpus], settings)
    assert set(statuses(first).values()) == {"indexed"}
    lib = Library.open(settings)
    # the counter sees the real embedding calls: each chunk, and each sentence of a chunk of several
    sentences = sum(len(units) for r in lib.store.chunk_rows() if len(units := sentence_units(r["text"])) > 1)
    assert sum(calls) == sum(r.chunks for r in first) + sentences > sentences > 0
    counts_before, vectors_before = lib.store.counts(), lib.vectors.count()
    ids_before = sorted(r["chunk_id"] for r in lib.store.chunk_rows())

    calls.clear()
    second = ingest_paths([corpus], settings)

    assert statuses(second) == {MD_NAME: "unchanged", TXT_NAME: "unchanged", PDF_NAME: "unchanged"}
    assert calls == [], "an unchanged file was embedded again"
    assert [(r.pages, r.chunks) for r in second] == [(r.pages, r.chunks) for r in first]
    lib = Library.open(settings)
    assert lib.store.counts() == counts_before
    assert lib.vectors.count() == vectors_before
    assert sorted(r["chunk_id"] for r in lib.store.chunk_rows()) == ids_before
    assert_consistent(lib)


def test_other_chunking_settings_reindex_unchanged_files_once(corpus, settings):
    ingest_paths([corpus], settings)
    before = {r.source_file: r.chunks for r in ingest_paths([corpus], settings)}
    smaller = settings.model_copy(update={"chunk_tokens": 120, "chunk_overlap": 20})

    rechunked = ingest_paths([corpus], smaller)

    assert set(statuses(rechunked).values()) == {"replaced"}
    assert all(r.chunks > before[r.source_file] for r in rechunked)  # smaller chunks, more of them
    assert set(statuses(ingest_paths([corpus], smaller)).values()) == {"unchanged"}
    lib = Library.open(smaller)
    assert lib.store.counts()[1] == sum(r.chunks for r in rechunked)
    assert_consistent(lib)
    lib.remove(MD_NAME)
    assert lib.store.get_meta("chunking:" + doc_id_for(MD_NAME)) is None


# --------------------------------------------------------------------------- change detection


def test_edited_file_is_replaced_and_old_text_is_gone_everywhere(corpus, settings):
    ingest_paths([corpus], settings)
    txt_id = doc_id_for(TXT_NAME)
    lib = Library.open(settings)
    old_ids = set(lib.store.chunk_ids(txt_id))
    assert old_ids and set(lib.vectors.ids_for_doc(txt_id)) == old_ids
    assert any(WVR_OLD_SENTENCE in t for t in all_chunk_texts(settings))
    before = Retriever(settings).search(WVR_OLD_SENTENCE, k=3)
    assert any(WVR_OLD_SENTENCE in squash(p.text) for p in before), "precondition: the old text is searchable"

    paragraphs = wvr_paragraphs()
    old_paragraph = next(p for p in paragraphs if WVR_OLD_SENTENCE in p)
    (corpus / TXT_NAME).write_text(
        "\n\n".join(NEW_PARAGRAPH if p == old_paragraph else p for p in paragraphs) + "\n", encoding="utf-8"
    )
    results = ingest_paths([corpus], settings)

    assert statuses(results) == {MD_NAME: "unchanged", TXT_NAME: "replaced", PDF_NAME: "unchanged"}
    lib = Library.open(settings)
    texts = all_chunk_texts(settings)
    assert not any(WVR_OLD_SENTENCE in t for t in texts)
    assert any(NEW_SENTENCE in t for t in texts)
    new_ids = set(lib.store.chunk_ids(txt_id))
    assert new_ids and not (new_ids & old_ids)
    chroma_ids = set(lib.vectors.ids_for_doc(txt_id))
    assert chroma_ids == new_ids and not (chroma_ids & old_ids)
    assert not (set(lib.lexical.chunk_ids) & old_ids)
    assert_consistent(lib)

    retriever = Retriever(settings)
    assert not any(WVR_OLD_SENTENCE in squash(p.text) for p in retriever.search(WVR_OLD_SENTENCE, k=5))
    found = retriever.search(NEW_SENTENCE, k=3)
    assert found and found[0].source_file == TXT_NAME and NEW_SENTENCE in squash(found[0].text)
    assert len(lib.store.documents()) == 3


def test_a_running_retriever_follows_an_edit_made_by_another_process(corpus, settings):
    """The app keeps one Retriever open while `policylab ingest` changes the library from another process."""
    ingest_paths([corpus], settings)
    retriever = Retriever(settings)
    assert retriever.search(WVR_OLD_SENTENCE, k=3)[0].source_file == TXT_NAME  # precondition
    paragraphs = wvr_paragraphs()
    old_paragraph = next(p for p in paragraphs if WVR_OLD_SENTENCE in p)
    (corpus / TXT_NAME).write_text(
        "\n\n".join(NEW_PARAGRAPH if p == old_paragraph else p for p in paragraphs) + "\n", encoding="utf-8"
    )
    run = cli(["ingest", str(corpus)], settings.data_dir)
    assert run.returncode == 0, run.stdout + run.stderr

    new_ids = set(Library.open(settings).store.chunk_ids(doc_id_for(TXT_NAME)))
    assert set(retriever.library.lexical.chunk_ids) != new_ids  # not yet: nothing searched since
    found = retriever.search(NEW_SENTENCE, k=3)
    assert found and found[0].source_file == TXT_NAME and NEW_SENTENCE in squash(found[0].text)
    assert found[0].dense_rank is not None  # found by the vectors too, not only by BM25
    assert new_ids <= set(retriever.library.lexical.chunk_ids)
    assert retriever.library.lexicon.source == retriever.library.lexical.fingerprint  # the writer's word lexicon
    assert not any(WVR_OLD_SENTENCE in squash(p.text) for p in retriever.search(WVR_OLD_SENTENCE, k=5))


def test_in_process_writes_are_seen_without_reopening_the_vector_index(corpus, settings):
    """Uploads in the app go through another Library of the same process: one shared Chroma instance."""
    from ingest import vectors

    ingest_paths([corpus / MD_NAME], settings)
    retriever = Retriever(settings)
    assert retriever.search("cultural property", k=1)  # opens the caches
    generation = vectors._generations.get(str(settings.chroma_dir), 0)
    ingest_paths([corpus / TXT_NAME], settings, library=Library.open(settings))
    found = retriever.search(WVR_OLD_SENTENCE, k=3)
    assert found and found[0].source_file == TXT_NAME and found[0].dense_rank is not None
    assert vectors._generations.get(str(settings.chroma_dir), 0) == generation


# --------------------------------------------------------------------------- removal


def test_remove_by_library_and_by_cli_clears_store_vectors_and_bm25(corpus, settings):
    ingest_paths([corpus], settings)
    md_id, txt_id = doc_id_for(MD_NAME), doc_id_for(TXT_NAME)
    md_query = "buildings whose main and effective purpose is to preserve or exhibit the movable cultural property"
    txt_query = "Leveraging cultural soft power to create an image of a confident, trustworthy, and responsible Vietnam"
    retriever = Retriever(settings)
    assert retriever.search(md_query, k=3)[0].source_file == MD_NAME  # precondition
    assert retriever.search(txt_query, k=3)[0].source_file == TXT_NAME

    removed = Library.open(settings).remove(MD_NAME)
    assert removed is not None and removed.doc_id == md_id

    run = cli(["remove", TXT_NAME], settings.data_dir)
    assert run.returncode == 0, run.stderr
    assert TXT_NAME in run.stdout

    listing = cli(["library", "--json"], settings.data_dir)
    assert listing.returncode == 0, listing.stderr
    assert [d["source_file"] for d in json.loads(listing.stdout)] == [PDF_NAME]

    lib = Library.open(settings)
    for doc_id in (md_id, txt_id):
        assert lib.store.get(doc_id) is None
        assert lib.store.chunk_ids(doc_id) == []
        assert lib.vectors.ids_for_doc(doc_id) == []
        assert not any(cid.startswith(doc_id + "-") for cid in lib.lexical.chunk_ids)
    assert_consistent(lib)

    retriever = Retriever(settings)
    for query in (md_query, txt_query, "cultural property", "Vietnam diplomacy culture"):
        passages = retriever.search(query, k=10)
        assert passages, "the PDF is still there and should be found"
        assert {p.source_file for p in passages} == {PDF_NAME}, query


# --------------------------------------------------------------------------- bad input


NON_LATIN_NAME = "Báo cáo văn hoá 日本.txt"
CP1252_TEXT = (
    "Café culture in Lyon – a naïve “soft power” story?\n\n"
    "The festival’s budget rose to €40,000 and the Müller Foundation paid for the façade of the old théâtre."
)
UTF16_TEXT = (
    "Ngoại giao văn hoá của Việt Nam\n\n"
    "Việt Nam quảng bá văn hoá ra thế giới qua các lễ hội, triển lãm và chương trình giao lưu nghệ thuật."
)
NON_LATIN_TEXT = (
    "The Japan Foundation and Vietnamese cultural institutes signed a memorandum on joint exhibitions of "
    "lacquer painting, with touring shows planned in Hanoi, Hue and Osaka."
)

EXPECTED_FAILURES = {
    "cut.pdf": ["damaged or truncated PDF"],
    "locked.pdf": ["encrypted", "password"],
    "scan.pdf": ["no extractable text", "OCR"],
    "empty.txt": ["empty"],
    "download.pdf": ["not a PDF", "HTML"],
    "data.xyz": ["unsupported file type .xyz"],
}


def make_bad_inputs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    make_truncated_pdf(folder / "cut.pdf")
    make_encrypted_pdf(folder / "locked.pdf", user_password="s3cret-pass")
    make_image_only_pdf(folder / "scan.pdf", ["Cultural diplomacy in practice", "A scanned page without text"])
    (folder / "empty.txt").write_bytes(b"")
    make_html_named_pdf(folder / "download.pdf")
    return sorted(folder.iterdir())


def test_bad_files_fail_with_reasons_while_good_ones_are_indexed(tmp_path, settings):
    settings = make_settings(settings.data_dir, ocr="off")
    folder = tmp_path / "mixed"
    make_bad_inputs(folder)
    (folder / TXT_NAME).write_text(wvr_excerpt(3), encoding="utf-8")
    write_encoded_text(folder / "notes-cp1252.txt", CP1252_TEXT, "cp1252")
    write_encoded_text(folder / "notes-utf16.txt", UTF16_TEXT, "utf-16")
    (folder / NON_LATIN_NAME).write_text(NON_LATIN_TEXT, encoding="utf-8")
    unsupported = tmp_path / "elsewhere" / "data.xyz"
    unsupported.parent.mkdir()
    unsupported.write_text("some data", encoding="utf-8")

    results = ingest_paths([folder, unsupported], settings)

    by_name = {r.source_file: r for r in results}
    assert set(by_name) == set(EXPECTED_FAILURES) | {TXT_NAME, "notes-cp1252.txt", "notes-utf16.txt", NON_LATIN_NAME}
    for name, fragments in EXPECTED_FAILURES.items():
        result = by_name[name]
        assert result.status == "failed", (name, result)
        for fragment in fragments:
            assert fragment in result.reason, (name, result.reason)
    for name in (TXT_NAME, "notes-cp1252.txt", "notes-utf16.txt", NON_LATIN_NAME):
        assert by_name[name].status == "indexed" and by_name[name].chunks > 0, by_name[name]

    lib = Library.open(settings)
    assert sorted(d.source_file for d in lib.store.documents()) == sorted(
        [TXT_NAME, "notes-cp1252.txt", "notes-utf16.txt", NON_LATIN_NAME]
    )
    cp1252 = squash(" ".join(r["text"] for r in lib.store.chunk_rows([doc_id_for("notes-cp1252.txt")])))
    assert "Café culture in Lyon – a naïve “soft power” story?" in cp1252
    assert "€40,000" in cp1252 and "Müller" in cp1252 and "façade" in cp1252
    utf16 = squash(" ".join(r["text"] for r in lib.store.chunk_rows([doc_id_for("notes-utf16.txt")])))
    assert "Ngoại giao văn hoá của Việt Nam" in utf16 and "\x00" not in utf16
    assert lib.store.find(NON_LATIN_NAME).source_file == NON_LATIN_NAME
    assert_consistent(lib)

    found = Retriever(settings).search("lacquer painting exhibitions Hanoi Osaka", k=3)
    assert found and found[0].source_file == NON_LATIN_NAME

    # Ingesting only the bad files again changes nothing.
    counts, vectors = lib.store.counts(), lib.vectors.count()
    hashes = {d.doc_id: d.content_hash for d in lib.store.documents()}
    bad = [folder / n for n in EXPECTED_FAILURES if n != "data.xyz"] + [unsupported]
    again = ingest_paths(bad, settings)
    assert [r.status for r in again] == ["failed"] * len(bad)
    lib = Library.open(settings)
    assert lib.store.counts() == counts and counts == (4, vectors)
    assert lib.vectors.count() == vectors
    assert {d.doc_id: d.content_hash for d in lib.store.documents()} == hashes
    assert_consistent(lib)


def test_file_over_the_size_limit_is_refused_without_being_read(tmp_path, settings, monkeypatch):
    settings = make_settings(settings.data_dir, max_file_mb=0.001)  # about 1 KB
    folder = tmp_path / "big"
    folder.mkdir()
    big = folder / "big.txt"
    big.write_text(("Cultural diplomacy builds trust between nations. " * 50)[:2048], encoding="utf-8")
    assert big.stat().st_size == 2048

    opened: list[str] = []
    real_open = io.open

    def spying_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == big:
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", spying_open)
    monkeypatch.setattr(builtins, "open", spying_open)

    results = ingest_paths([folder], settings)

    assert [(r.source_file, r.status) for r in results] == [("big.txt", "failed")]
    assert "limit" in results[0].reason and "MB" in results[0].reason, results[0].reason
    assert opened == [], "the over-size file was opened (read or hashed) before being refused"
    assert Library.open(settings).store.counts() == (0, 0)


# --------------------------------------------------------------------------- crash midway


def _row_status(db: Path, source_file: str) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT status FROM documents WHERE source_file=?", (source_file,)).fetchone()
    except sqlite3.OperationalError:  # the schema is not created yet, or the db is busy
        return None
    return row[0] if row else None


def _vectors_written(chroma_db: Path, doc_id: str) -> int:
    """Vectors of ``doc_id`` already in Chroma's own SQLite file (read-only peek at its metadata table)."""
    if not chroma_db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{chroma_db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM embedding_metadata WHERE key='doc_id' AND string_value=?", (doc_id,)
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_kill_9_during_ingest_leaves_nothing_searchable_and_rerun_recovers(tmp_path, settings):
    folder = tmp_path / "crash"
    folder.mkdir()
    small = "a-wvr-excerpt.txt"  # sorts first: fully indexed before the big one starts
    (folder / small).write_text(wvr_excerpt(3), encoding="utf-8")
    shutil.copy(HAGUE, folder / HAGUE.name)
    hague_id = doc_id_for(HAGUE.name)
    hague_query = "The Protecting Powers shall lend their good offices in all cases where they may deem it useful"
    assert hague_query in squash(HAGUE.read_text(encoding="utf-8"))

    env = {**os.environ, "POLICYLAB_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(POLICYLAB), "ingest", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed_while = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            status = _row_status(settings.library_db, HAGUE.name)
            if status == "ingesting" and _vectors_written(settings.chroma_dir / "chroma.sqlite3", hague_id) > 0:
                os.kill(proc.pid, signal.SIGKILL)
                killed_while = status
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_while is None:
            proc.kill()
        proc.wait(timeout=60)
    assert killed_while == "ingesting", (
        f"could not catch the ingest midway (exit code {proc.returncode}, status {_row_status(settings.library_db, HAGUE.name)})"
    )
    assert proc.returncode == -signal.SIGKILL

    lib = Library.open(settings)
    assert lib.store.get(hague_id).status == "ingesting"
    assert [d.source_file for d in lib.store.documents()] == [small]
    assert lib.vectors.ids_for_doc(hague_id), "precondition: the crash left some vectors of the document behind"
    passages = Retriever(settings).search(hague_query, k=10)
    assert passages, "the small document is still searchable"
    assert all(p.source_file == small for p in passages)

    results = ingest_paths([folder], settings)

    assert statuses(results) == {small: "unchanged", HAGUE.name: "indexed"}
    lib = Library.open(settings)
    assert lib.store.get(hague_id).status == "complete"
    ids = lib.vectors.ids_for_doc(hague_id)
    assert len(ids) == len(set(ids)) == next(r.chunks for r in results if r.source_file == HAGUE.name)
    assert_consistent(lib)
    found = Retriever(settings).search(hague_query, k=3)
    assert found and found[0].source_file == HAGUE.name and hague_query in squash(found[0].text)


# --------------------------------------------------------------------------- concurrency


def test_cli_ingest_refuses_while_another_ingest_holds_the_lock(tmp_path, settings):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / TXT_NAME).write_text(wvr_excerpt(2), encoding="utf-8")
    settings.data_dir.mkdir(parents=True)
    lock = FileLock(str(settings.data_dir / "ingest.lock"))
    with lock:
        run = cli(["ingest", str(folder)], settings.data_dir)
    assert run.returncode != 0
    assert "Another ingest is running" in squash(run.stderr), run.stderr
    assert Library.open(settings).store.documents(status=None) == []


def test_in_process_ingest_waits_for_the_lock_when_asked(tmp_path, settings):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / TXT_NAME).write_text(wvr_excerpt(2), encoding="utf-8")
    settings.data_dir.mkdir(parents=True)
    lock = FileLock(str(settings.data_dir / "ingest.lock"), thread_local=False)
    lock.acquire()
    released = threading.Event()
    try:
        with pytest.raises(IngestBusyError, match="Another ingest is running"):
            ingest_paths([folder], settings, lock_timeout=0)

        def release() -> None:
            lock.release()
            released.set()

        seen: list[bool] = []
        timer = threading.Timer(1.0, release)
        timer.start()
        results = ingest_paths(
            [folder], settings, lock_timeout=120, progress=lambda *_: seen.append(released.is_set())
        )
        timer.join()
    finally:
        if lock.is_locked:
            lock.release()
    assert seen and seen[0], "the ingest started before the other holder released the lock"
    assert statuses(results) == {TXT_NAME: "indexed"}


# --------------------------------------------------------------------------- private uploads


def test_private_upload_is_visible_only_to_its_owner(tmp_path, settings):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / TXT_NAME).write_text(wvr_excerpt(4), encoding="utf-8")
    private = tmp_path / "private"
    private.mkdir()
    (private / MD_NAME).write_text(hague_excerpt(), encoding="utf-8")
    assert set(statuses(ingest_paths([shared], settings)).values()) == {"indexed"}
    assert statuses(ingest_paths([private], settings, owner="alice")) == {MD_NAME: "indexed"}

    query = "movable or immovable property of great importance to the cultural heritage of every people"
    retriever = Retriever(settings)
    for viewer in ("bob", "", None):
        passages = retriever.search(query, k=10, viewer=viewer)
        assert passages, f"viewer {viewer!r} should still see the shared document"
        assert {p.source_file for p in passages} == {TXT_NAME}, viewer
    mine = retriever.search(query, k=3, viewer="alice")
    assert mine and mine[0].source_file == MD_NAME and mine[0].extra["owner"] == "alice"

    lib = Library.open(settings)
    assert [d.source_file for d in lib.documents(viewer="bob")] == [TXT_NAME]
    assert [d.source_file for d in lib.documents(viewer="")] == [TXT_NAME]
    assert sorted(d.source_file for d in lib.documents(viewer="alice")) == sorted([MD_NAME, TXT_NAME])
