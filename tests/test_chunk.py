"""Chunking on real text: token budgets, exact offsets, clause-aware cuts of long sentences."""

from __future__ import annotations

import re

from assistant.tokens import count_tokens
from conftest import KNOWLEDGE
from ingest.chunk import chunk_document
from ingest.loaders import load_document



def _chunks(name: str, tokens: int = 220, overlap: int = 40):
    document = load_document(KNOWLEDGE / name)
    return document, chunk_document(document, "doc", "hash", tokens, overlap)


def test_chunks_are_exact_slices_within_budget():
    document, chunks = _chunks("unesco-2003-convention-intangible-cultural-heritage.md")
    for chunk in chunks:
        assert document.pages[chunk.page_index].text[chunk.char_start : chunk.char_end] == chunk.text
        assert count_tokens(chunk.text) <= 220 + 20  # a heading line may lead the chunk


def test_a_long_preamble_is_cut_between_clauses_and_every_clause_stays_whole():
    document, chunks = _chunks("unesco-2003-convention-intangible-cultural-heritage.md")
    preamble = next(line for line in document.pages[0].text.splitlines() if line.startswith("The General Conference"))
    assert count_tokens(preamble) > 2 * 220  # one sentence, far over the budget
    clauses = [c.strip(" ,") for c in re.split(r",\s+(?=(?:Considering|Recognizing|Noting|Recalling|Being aware|Adopts)\b)", preamble)]
    assert len(clauses) > 10
    texts = [c.text for c in chunks]
    for clause in clauses:
        if count_tokens(clause) <= 220:
            assert any(clause in text for text in texts), clause[:80]
    # pieces end at a clause boundary, never in the middle of a phrase
    preamble_chunks = [c for c in chunks if c.text in preamble]
    assert len(preamble_chunks) >= 2
    assert all(c.text.rstrip().endswith((",", ".", ";")) for c in preamble_chunks)


def test_locations_of_the_asef_report_never_show_captions_name_rows_or_logo_lines():
    """The plain-text report's chunker headings include a photo caption, name rows and a logo's second
    line; they stay in the indexed text but a citation's location shows only real headings."""
    from assistant.types import short_section

    document, chunks = _chunks("asef-linkup-2024-how-do-we-navigate-cultural-diplomacy.txt")
    raw = {c.section.rsplit(" › ", 1)[-1] for c in chunks}
    assert {"OF DENMARK", "Image: Asia-Europe Foundation", "Dr Claire Rosslyn Wilson"} <= raw  # what the chunker sees
    shown = {short_section(c.section, "") for c in chunks}
    assert not any("\t" in s or "Image:" in s or "OF DENMARK" in s or "Dr Claire" in s for s in shown)
    assert "4. Build Capacity and Networks" in {s.rsplit(" › ", 1)[-1] for s in shown}  # real headings remain


def test_sentence_units_join_short_pieces_and_split_clauses_and_lines():
    from ingest.chunk import MIN_SENTENCE_WORDS, sentence_units

    text = ("Considering that cultural heritage is threatened by new causes of damage and decay;\n"
            "Noting its importance. For everyone.\n"
            "- a list item of a few words\n"
            "Recognizing that the protection of this heritage at the national level often remains incomplete. End.")
    units = sentence_units(text)
    assert units[0] == "Considering that cultural heritage is threatened by new causes of damage and decay;"
    assert units[1] == "Noting its importance. For everyone. - a list item of a few words"  # short pieces joined
    assert units[-1].endswith("remains incomplete. End.")  # a short tail joins the last sentence
    assert all(len(u.split()) >= MIN_SENTENCE_WORDS for u in units)
    assert " ".join(units).split() == text.split()  # nothing lost, nothing added
    assert sentence_units("Too short.") == ["Too short."]
