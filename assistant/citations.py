"""Citation checking: every ``[n]`` the model writes is verified against passage ``n``.

For each sentence that cites, we look for the span of the cited passage that supports
it (word overlap, and e5 embedding similarity for answers in another language than the
source). A citation that does not support its sentence is moved to a retrieved passage
that does, or removed; a sentence left with no support is dropped. The result records,
per citation, the exact quote (a substring of the page text) so the UI can show it.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import bm25s.stopwords as bm25_stopwords
import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.attribution import attributes_to_sources
from assistant.language import detect_language
from assistant.types import Passage, short_section

MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
SENTENCE_END = re.compile(r"[.!?]((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*)[ \t]+(?=[^\s\[])")
PASSAGE_SENTENCE = re.compile(r"[^\n]+?(?:[.!?;](?=\s)|$)", re.MULTILINE)
NEGATIONS = {"not", "no", "never", "none", "neither", "nor", "without", "cannot"}
POLARITY = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|\w+n't|cancel\w*|abolish\w*|suspend\w*|terminat\w*"
    r"|revok\w*|withdr[ae]w\w*|banned|prohibit\w*|forbid\w*|reject\w*|denied|denies|discontinu\w*|ceased?)\b"
)
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
# Number words of the languages users write in, so that a model that turns "four" into "five" is caught.
# Left out: words that are also common non-numbers ("one", English "once", French "neuf").
NUMBER_WORDS = {
    word: str(value)
    for words in (
        "two three four five six seven eight nine ten eleven twelve",
        "deux trois quatre cinq six sept huit _ dix onze douze",
        "dos tres cuatro cinco seis siete ocho nueve diez _ doce",
        "zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
    )
    for value, word in enumerate(words.split(), start=2)
    if word != "_"
}
NUMBER_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
UNSOURCED = "†"  # marks a sentence the model wrote that no passage supports (a link, suggestion or inference)
SAME_DOCUMENT = "same document as"  # the prompt's header for a passage whose document was named above
# The header the prompt puts above each passage ("[3] Title (2005), Article 5:", "[4] Title (2005):"), echoed
# back by a model; a line with SAME_DOCUMENT ("[5] same document as [3], Article 9:") is dropped whole.
PASSAGE_HEADER = re.compile(r"^\[\d+\]\s.{0,120}\((?:\d{4}|n\.d\.)\)(?:,\s.{0,80})?:$")
# The same header copied without its number ("Title… (2001), Annex II — Main lines:"): a source line, not a statement.
BARE_HEADER = re.compile(r"^[^.!?\[\]]{8,160}\((?:\d{4}|n\.d\.)\)(?:,\s[^.!?\[\]]{0,120})?:?$")
# A line of a document that gives orders to an AI assistant (a planted prompt injection) is not evidence:
# it could only "support" a claim by telling the model to make it. Its sentences are never quoted or cited.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^\n]{0,60}?\b(?:instructions?|rules|prompts?|guidelines)\b"
    r"|\bsystem (?:prompt|instructions?|message)\b"
    r"|\b(?:in|to) (?:every|each|all) (?:answers?|responses?|replies)\b"
    r"|\b(?:AI|assistants?|chatbots?|language models?|LLMs?)\b[^\n.]{0,30}\b(?:must|should|shall|will)\b[^\n.]{0,20}"
    r"\b(?:say|answer|reply|respond|cite|reveal|print|output)\b",
    re.IGNORECASE,
)

# Thresholds, calibrated on eval/labels/citation_support.jsonl (see `python -m eval.calibrate_support`).
LEXICAL_SUPPORT = 0.5      # share of the claim's content words found in the span
EMBEDDING_SUPPORT = 0.86   # e5 cosine (query: claim, passage: span), used across languages
EMBEDDING_WITH_OVERLAP = 0.83  # a lower cosine suffices when some words are shared too
MIN_OVERLAP_FOR_EMBEDDING = 0.2
# A sentence echoes a request's instruction when it holds this share of the instruction's content words and
# (at least) this share of its own words come from it.
ECHO_COVERAGE = 0.8
ECHO_CONTAINMENT = 0.9

STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how in into is it its
    may might must not of on or our shall should so such than that the their them there these they this
    those to under was were what when where which while who why will with would your you we us also any
    all each other more most some very about after before between both during only same then through""".split()
)

# Words a request capitalises that name nothing: German's "Sie", a French sentence's "Nous" (the first-word rule).
FUNCTION_WORDS = STOPWORDS.union(*(getattr(bm25_stopwords, f"STOPWORDS_{language}") for language in (
    "EN", "FRENCH", "GERMAN", "SPANISH", "ITALIAN", "PORTUGUESE", "DUTCH")))


# The names a claim relies on: a capitalised word inside a sentence ("…met the Korean ambassador"), an acronym
# ("ASEF", "NGOs"), a first word in the possessive ("Vietnam's …"). A passage that mentions none of them does not
# support the claim, however many of its other words it shares: "Vietnam's deputy minister of culture will be meeting
# on Tuesday" shares "meeting" and "culture" with UNESCO's "General Conference … meeting in Paris".
NAME = re.compile(r"(?<=[a-z,;] )[A-Z][^\W\d_]{2,}|(?<![\w-])[A-Z]{2,}(?=s?\b)|^[A-Z][^\W\d_]+(?=['’]s\b)")
ROMAN_NUMERAL = re.compile(r"^[IVXLCDM]+$")
FIRST_WORD = re.compile(r"^[A-Z][^\W\d_]{2,}")
# A list item's leading label ("**Prevention and Early Detection**:", "Capacity building:") is the model's own heading.
LIST_LABEL = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+)?(?:\*\*[^*\n]{1,80}\*\*:?|[^.:!?\n]{1,60}:)\s+")
RECOMMENDS = re.compile(
    r"\b(?:should|ought to|(?:we|I) (?:recommend|urge|propose|call on)|(?:is|are) (?:encouraged|invited) to"
    r"|it is recommended)\b", re.IGNORECASE,  # "The lab recommends…" reports what someone said: its names count
)
GENERIC_ACRONYMS = frozenset({"NGO", "NGOs", "CSO", "CSOs"})  # kinds of organisation, not names the library could lack
DEMONYM_SUFFIXES = ("ian", "ean", "ese", "an", "n")  # "Asian" names Asia, "European" Europe, "Vietnamese" Vietnam


@dataclass
class Citation:
    """A verified citation: passage, page and the exact supporting quote."""

    n: int
    chunk_id: str
    doc_id: str
    source_file: str
    title: str
    publisher: str
    year: int | None
    page: int | None
    section: str
    quote: str
    page_index: int
    quote_start: int  # offsets of ``quote`` in the page text
    quote_end: int
    support: float
    status: str = "kept"  # kept | retargeted | added

    @property
    def location(self) -> str:
        return f"p. {self.page}" if self.page is not None else short_section(self.section, self.title)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["location"] = self.location
        return data


@dataclass
class VerificationReport:
    kept: int = 0
    retargeted: int = 0
    removed: int = 0
    dropped_sentences: list[str] = field(default_factory=list)
    supported_sentences: int = 0
    uncited_sentences: int = 0
    added: int = 0  # citations the model left out, attached because a passage supports the sentence

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Span:
    start: int  # offsets within the passage text
    end: int
    text: str
    words: frozenset[str]
    numbers: frozenset[str]


def content_words(text: str) -> frozenset[str]:
    """Lower-cased content words, crudely stemmed (first 6 letters) so "states"/"state" match."""
    words = re.findall(r"[^\W\d_]{3,}", text.lower())
    return frozenset(w[:6] for w in words if w not in STOPWORDS)


def polarity_in(text: str) -> frozenset[str]:
    """Words that negate or end what a sentence states ("not", "cancelled", "banned"…), canonicalised.

    A claim may not carry one its span lacks: word overlap and e5 both score "The residency has been
    cancelled" close to "The residency hosts four artists", so the flip itself must be checked.
    """
    found = set()
    for match in POLARITY.finditer(text.lower()):
        word = match.group(0)
        found.add("not" if word in NEGATIONS or word.endswith("n't") else word[:5])
    return frozenset(found)


def numbers_in(text: str) -> frozenset[str]:
    """The numbers of ``text``, in digits or words ("every four years" and "every 4 years" agree)."""
    found = {n.replace(",", "") for n in NUMBER.findall(text)}
    found |= {NUMBER_WORDS[w.lower()] for w in NUMBER_WORD.findall(text)}
    return frozenset(found)


def is_title(text: str) -> bool:
    """A line in title case without a full stop ("A Joint Recommendation on Fairer Artist Mobility"): a heading,
    whose capitals name nothing."""
    words = re.findall(r"[^\W\d_]{4,}", text)
    return (len(words) >= 3 and not text.rstrip("*_ :").endswith((".", "!", "?", ";"))
            and sum(w[0].isupper() for w in words) >= 0.6 * len(words))


def names_in(text: str, language: str = "") -> list[str]:
    """The words ``NAME`` reads as names in ``text``, without roman numerals and kinds of organisation ("NGOs"); in
    German (``language`` "de"), which capitalises every noun, only acronyms."""
    return [n for n in NAME.findall(text) if not ROMAN_NUMERAL.match(n) and n not in GENERIC_ACRONYMS
            and (language != "de" or n.isupper())]


def claim_names(claim: str, names_anywhere: frozenset[str] = frozenset(), language: str = "") -> frozenset[str]:
    """The names ``claim`` (in ``language``, see ``names_in``) relies on, without a list item's leading label; none
    in a title, nor in a recommendation, whose names are its addressees ("Ministries in Asia and Europe should…").

    A capitalised first word is a name too when its key is in ``names_anywhere`` (``name_keys`` of the request,
    the passages' places): "Vietnam has faced…" in a brief on Vietnamese counterparts.
    """
    body = LIST_LABEL.sub("", strip_markers(claim).strip().strip("*_ "), count=1)
    if is_title(body) or RECOMMENDS.search(body):
        return frozenset()
    names = set(names_in(body, language))
    first = FIRST_WORD.match(body)
    if first and first.group(0).lower() not in FUNCTION_WORDS and _name_key(first.group(0)) in names_anywhere:
        names.add(first.group(0))
    return frozenset(names)


def name_keys(text: str = "", names: Iterable[str] = ()) -> frozenset[str]:
    """The comparison keys (``_name_key``) of the names ``text`` uses inside its sentences (title-case lines
    skipped) and of ``names``, each demonym also as its place's ("Asian" → "Asia"): what makes a capitalised first
    word a name in ``claim_names``."""
    language = detect_language(text) if text.strip() else ""
    found = [n for line in text.splitlines() if not is_title(line) for n in names_in(line, language)]
    keys: set[str] = set()
    for name in [*found, *names]:
        if name.lower() in FUNCTION_WORDS:
            continue
        keys.add(_name_key(name))
        keys.update(_name_key(name[: -len(end)]) for end in DEMONYM_SUFFIXES
                    if name.lower().endswith(end) and len(name) - len(end) >= 4)
    return frozenset(keys)


def _initials(text: str) -> frozenset[str]:
    """Initials of runs of capitalised words ("United Nations" → "UN"; "of", "and", "the" skipped)."""
    found: set[str] = set()
    for run in re.findall(r"[A-Z][\w-]*(?:,?\s+(?:(?:of|and|the|for)\s+)*[A-Z][\w-]*)+", text):
        letters = "".join(w[0] for w in re.findall(r"[A-Z][\w-]*", run))
        found.update(letters[i:j] for i in range(len(letters)) for j in range(i + 2, len(letters) + 1))
    return frozenset(found)


def _name_key(word: str) -> str:
    """A word's form for comparing names: lower-cased, singular ("Parties" and "Party" agree), first six letters."""
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return word[:6]


def unknown_names(
    claim: str, known_text: str, names_anywhere: frozenset[str] = frozenset(), language: str = "",
) -> list[str]:
    """The names of ``claim`` (``claim_names``) that ``known_text`` never mentions (compared by ``_name_key``, a
    demonym counting as its place: "Vietnamese" is found by "Vietnam"; an acronym also by the initials it stands
    for: "UN")."""
    names = claim_names(claim, names_anywhere, language)
    if not names:
        return []
    words = frozenset(_name_key(w) for w in re.findall(r"[^\W\d_]{2,}", known_text))
    initials: frozenset[str] | None = None

    def known(name: str) -> bool:
        nonlocal initials
        lower = name.lower()
        if _name_key(name) in words or any(
            lower.endswith(end) and _name_key(lower[: -len(end)]) in words for end in DEMONYM_SUFFIXES
        ):
            return True
        if name.isupper():
            initials = _initials(known_text) if initials is None else initials
            return name in initials
        return False

    return sorted(n for n in names if not known(n))


def names_unsupported(
    claim: str, claim_language: str, evidence: str, evidence_language: str, names_anywhere: frozenset[str] = frozenset(),
) -> list[str]:
    """``unknown_names`` of ``claim`` in ``evidence``, read only when both are in the same language, since names
    change across languages ("La Haye", "The Hague"): the rule the verifier applies and the evaluation's judge."""
    if claim_language != evidence_language:
        return []
    return unknown_names(claim, evidence, names_anywhere, claim_language)


def passage_identity(item: Passage | Citation) -> str:
    """What identifies a passage (or the passage a citation quotes): its document's title and year, its section."""
    return f"{item.title} {item.year or ''} {item.section}"


def passage_numbers(passage: Passage) -> frozenset[str]:
    """Numbers that identify a passage rather than state something (see ``passage_identity``)."""
    return numbers_in(passage_identity(passage))


def instruction_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text`` that gives instructions to an AI assistant (see ``INSTRUCTION``)."""
    found = []
    offset = 0
    for line in text.split("\n"):
        if INSTRUCTION.search(line):
            found.append((offset, offset + len(line)))
        offset += len(line) + 1
    return found


# Where a quote stands in the library: (document, page index, start, end), offsets within the page's text.
Place = tuple[str, int, int, int]


def place_of(passage: Passage, span: Span) -> Place:
    """Where ``span`` of ``passage`` stands in its page (a passage is a verbatim slice of its page's text)."""
    return passage.doc_id, passage.page_index, passage.char_start + span.start, passage.char_start + span.end


def span_at(text: str, start: int, end: int) -> Span:
    """The span ``text[start:end]`` with its content words and numbers."""
    return Span(start, end, text[start:end], content_words(text[start:end]), numbers_in(text[start:end]))


def sentence_spans(text: str) -> list[Span]:
    """The single-sentence spans of a passage (no headings, nothing from an instruction line)."""
    return [span_at(text, s, e) for s, e in _sentence_bounds(text)]


def _sentence_bounds(text: str, planted: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    planted = instruction_lines(text) if planted is None else planted
    singles = []
    for match in PASSAGE_SENTENCE.finditer(text):
        chunk = match.group(0)
        stripped = chunk.strip()
        if len(stripped) < 3 or stripped.startswith("#"):
            continue  # headings label passages; they are not evidence
        if any(start <= match.start() < end for start, end in planted):
            continue  # instructions planted in a document are not evidence
        start = match.start() + chunk.index(stripped)
        singles.append((start, start + len(stripped)))
    return singles


def passage_spans(text: str) -> list[Span]:
    """Sentence spans of a passage, plus each pair of adjacent sentences (never from an instruction line)."""
    planted = instruction_lines(text)
    singles = _sentence_bounds(text, planted)
    spans = list(singles)
    spans += [
        (singles[i][0], singles[i + 1][1]) for i in range(len(singles) - 1)
        if not any(singles[i][1] <= start < singles[i + 1][0] for start, _end in planted)  # never across one
    ]
    return [span_at(text, s, e) for s, e in spans]


def mark_unsourced(sentence: str) -> str:
    """``sentence`` with the ``UNSOURCED`` mark before its final punctuation (where a citation would go)."""
    body = sentence.rstrip()
    trailing = sentence[len(body):]
    if body and body[-1] in ".!?:;":
        return f"{body[:-1]} {UNSOURCED}{body[-1]}{trailing}"
    return f"{body} {UNSOURCED}{trailing}"


def _echoes(sentence: str, instructions: Sequence[frozenset[str]]) -> bool:
    """An uncited ``sentence`` that restates one of the request's instructions (most of its words, little else)."""
    if cited_numbers(sentence):
        return False
    words = content_words(strip_markers(sentence))
    return len(words) >= 4 and any(
        len(words & wanted) >= ECHO_COVERAGE * len(wanted) and len(words - wanted) <= (1 - ECHO_CONTAINMENT) * len(words)
        for wanted in instructions
    )


def drop_prompt_echo(draft: str, templates: Sequence[str], request: str = "") -> str:
    """``draft`` without the lines that repeat the prompt's own instructions (``templates``) or its passage
    headers: a model talked into printing its prompt must not pass the instructions off as part of an answer.

    With ``request``, an uncited sentence that restates one of its instructions ("Draft a joint recommendation
    on…") goes too: it answers nothing, and kept it would be marked as the model's own claim. A restated
    question is left alone (an answer may rightly repeat what was asked, then cite it).
    """
    fixed = {
        fragment.strip().lstrip("-* ").strip()
        for template in templates for line in template.splitlines()
        if not line.lstrip().startswith("#")  # the headings the model is asked to write are not an echo
        for fragment in re.split(r"\{\w+\}", line)
        if len(fragment.strip()) >= 16
    }
    kept = [line for line in draft.splitlines()
            if not any(f in line for f in fixed) and not PASSAGE_HEADER.match(line.strip())
            and not BARE_HEADER.match(line.strip().lstrip("-*• ").strip("*_ "))
            and SAME_DOCUMENT not in line.lower()]  # a header's words copied into a bullet state nothing
    instructions = [
        words for sentence in split_sentences(request)
        if not is_question(sentence) and len(words := content_words(sentence)) >= 4
    ]
    if instructions:
        kept = [_without_echo(line, instructions) for line in kept]
    return "\n".join(line for line in kept if line is not None).strip()


def _without_echo(line: str, instructions: Sequence[frozenset[str]]) -> str | None:
    """``line`` without its sentences that echo an instruction; None if nothing else was in it."""
    if line.lstrip().startswith("#") or not line.strip():
        return line
    remaining = "".join(s for s in split_sentences(line) if not _echoes(s, instructions)).rstrip()
    return remaining if remaining.lstrip(" -*0123456789.") else None


def split_sentences(text: str) -> list[str]:
    """Answer text cut into sentences; markers after a full stop stay with their sentence,
    and each piece keeps its own whitespace, so ``"".join(pieces) == text``."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        cursor = 0
        for match in SENTENCE_END.finditer(line):
            pieces.append(line[cursor : match.end()])
            cursor = match.end()
        if cursor < len(line):
            pieces.append(line[cursor:])
    return pieces


MIN_REPEAT_WORDS = 4  # content words a sentence needs before it can count as a repeat (short ones recur by chance)
# Words shared with an earlier sentence, over both's words, from which a sentence repeats it: a list item that
# spells out one of the principles an earlier sentence summed up says more than that sentence, and stays.
REPEAT_JACCARD = 0.8
LIST_MARKER_LINE = re.compile(r"\s*(?:[-*•+]|\d+[.)])\s*")
LIST_LABEL_START = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")


def without_repeats(draft: str) -> str:
    """``draft`` without statements that say again what one earlier sentence said (nearly the same content words,
    stemmed, and numbers: ``REPEAT_JACCARD``), and without the list items left empty: small models copy one list
    under every heading of a brief. Headings stay, and questions unless asked twice; headings left with nothing
    under them go later (``replies.without_empty_sections``). Of two copies the first stays, where the reader meets it;
    when only a later copy carries markers, they move to the first."""
    seen: list[tuple[frozenset[str], int]] = []  # each first copy's words and its place in ``kept``
    asked: set[str] = set()
    kept: list[str] = []

    def blank(piece: str) -> str:
        return "\n" if piece.endswith("\n") else ""

    for piece in split_sentences(draft):
        text = strip_markers(piece).strip().strip("*_ ")
        words = frozenset(w[:6] for w in re.findall(r"[^\W\d_]{3,}", text.lower()) if w not in FUNCTION_WORDS)
        words |= numbers_in(text)  # "the 1970 Convention states…" does not repeat "the 1972 Convention states…"
        question = " ".join(re.findall(r"[^\W_]+", LIST_LABEL_START.sub("", text).lower())) if is_question(text) else ""
        if question:
            kept.append(blank(piece) if question in asked else piece)
            asked.add(question)
            continue
        if text.startswith("#") or len(words) < MIN_REPEAT_WORDS:
            kept.append(piece)
            continue
        first = next((at for earlier, at in seen if len(words & earlier) >= REPEAT_JACCARD * len(words | earlier)), None)
        if first is None:
            seen.append((words, len(kept)))
            kept.append(piece)
            continue
        kept.append(blank(piece))
        if not MARKER.search(kept[first]) and (markers := "".join(m.group(0) for m in MARKER.finditer(piece))):
            kept[first] = with_markers(kept[first], markers)
    # a dropped piece keeps its line break, so ``kept`` has the draft's lines: drop those emptied here (a list item
    # left with its marker too), not the blank lines the draft had
    lines = [line for line, was in zip("".join(kept).split("\n"), draft.split("\n")) if line.strip() or not was.strip()]
    lines = [line for line in lines if not (LIST_MARKER_LINE.fullmatch(line) and line.strip())]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def with_markers(sentence: str, markers: str) -> str:
    """``sentence`` with citation ``markers`` (" [2][3]") placed before its closing punctuation and emphasis."""
    body = sentence.rstrip()
    cut = re.search(r"[.!?;:…]?[*_)\"'”]*$", body).start()  # the pattern matches, if only the empty end
    return body[:cut] + markers + body[cut:] + sentence[len(body):]


def cited_numbers(sentence: str) -> list[int]:
    found: list[int] = []
    for match in MARKER.finditer(sentence):
        found += [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
    return found


def strip_markers(sentence: str) -> str:
    return MARKER.sub("", sentence)


def is_question(sentence: str) -> bool:
    """Whether a sentence (markers and closing emphasis aside) asks rather than states: it asserts nothing."""
    return strip_markers(sentence).strip().rstrip("*_ )\"'”").endswith("?")


def states_something(answer: str) -> bool:
    """Whether a checked answer cites at least one statement; cited questions alone ("Who decides? [1]") tell the
    user nothing from the library."""
    return any(cited_numbers(sentence) and not is_question(sentence) for sentence in split_sentences(answer))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


REMEMBERED_VECTORS = 8_192  # sentence and claim vectors kept per embedder (float32: ~12 MB)


class VectorMemory:
    """The sentence and claim vectors one embedder computed for recent answers, shared by every request.

    Concurrent chats on one theme check claims against the same passages; each answer re-embedded
    their sentences and held the embedder's lock meanwhile (docs/benchmarks.md, load test). The
    embedder is deterministic, so a remembered vector is the one it would compute again. Least
    recently used vectors are dropped beyond ``capacity``.
    """

    def __init__(self, embeddings: Embeddings, capacity: int = REMEMBERED_VECTORS) -> None:
        self.embeddings = embeddings
        self.capacity = capacity
        self._vectors: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str], query: bool) -> list[list[float]]:
        """The vectors of ``texts`` (as queries or as passages), embedding in one batch those not remembered."""
        keys = [(query, text) for text in texts]
        with self._lock:
            found = {key: self._vectors[key] for key in keys if key in self._vectors}
            for key in found:
                self._vectors.move_to_end(key)
        todo = list(dict.fromkeys(key[1] for key in keys if key not in found))
        if todo:
            fresh = ([self.embeddings.embed_query(t) for t in todo] if query else self.embeddings.embed_documents(todo))
            with self._lock:
                for text, vector in zip(todo, fresh):
                    found[(query, text)] = self._vectors[(query, text)] = np.asarray(vector, dtype=np.float32)
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        return [found[key].tolist() for key in keys]

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


_MEMORIES: weakref.WeakKeyDictionary[Any, VectorMemory] = weakref.WeakKeyDictionary()
_MEMORIES_LOCK = threading.Lock()


def vector_memory(embeddings: Embeddings) -> VectorMemory:
    """The memory shared by all scorers of ``embeddings`` (a private one when the embedder cannot be a key)."""
    with _MEMORIES_LOCK:
        try:
            memory = _MEMORIES.get(embeddings)
            if memory is None:
                memory = _MEMORIES[embeddings] = VectorMemory(embeddings)
            return memory
        except TypeError:  # unhashable (a pydantic test double): no sharing
            return VectorMemory(embeddings)


class SupportScorer:
    """Scores how well a span supports a claim (lexical overlap + e5 similarity, numbers must match)."""

    def __init__(self, embeddings: Embeddings | None) -> None:
        self.embeddings = embeddings
        self.memory = vector_memory(embeddings) if embeddings is not None else None
        self._span_vectors: dict[str, list[float]] = {}
        self._claim_vectors: dict[str, list[float]] = {}

    def _claim_vector(self, claim: str) -> list[float] | None:
        if self.memory is None:
            return None
        if claim not in self._claim_vectors:
            self._claim_vectors[claim] = self.memory.vectors([claim], query=True)[0]
        return self._claim_vectors[claim]

    def seed(self, vectors: Mapping[str, Sequence[float]]) -> None:
        """Take vectors of span texts computed already (at indexing, by the same embedder) instead of embedding them."""
        if self.embeddings is not None:
            self._span_vectors.update(vectors)

    def prepare(self, spans: Sequence[Span]) -> None:
        """Embed the single-sentence spans not seen yet (in one batch)."""
        if self.memory is None:
            return
        todo = list(dict.fromkeys(s.text for s in spans if s.text not in self._span_vectors))
        if todo:
            self._span_vectors.update(zip(todo, self.memory.vectors(todo, query=False)))

    def score(self, claim: str, span: Span, context_numbers: frozenset[str] = frozenset()) -> tuple[float, float, bool]:
        """(lexical overlap, cosine or 0, numbers and negations consistent).

        ``context_numbers`` are the numbers of the cited passage's identity (document title and year,
        article): "the 2005 Convention" or "Article 9 requires…" need not repeat them in the quote.
        """
        words = content_words(claim)
        overlap = len(words & span.words) / len(words) if words else 0.0
        numbers_ok = numbers_in(claim) <= (span.numbers | context_numbers) and polarity_in(claim) <= polarity_in(span.text)
        cosine = 0.0
        vector = self._claim_vector(claim)
        if vector is not None and span.text in self._span_vectors:
            cosine = _cosine(vector, self._span_vectors[span.text])
        return overlap, cosine, numbers_ok

    @staticmethod
    def supports(overlap: float, cosine: float, numbers_ok: bool) -> bool:
        if not numbers_ok:
            return False
        return (
            overlap >= LEXICAL_SUPPORT
            or cosine >= EMBEDDING_SUPPORT
            or (cosine >= EMBEDDING_WITH_OVERLAP and overlap >= MIN_OVERLAP_FOR_EMBEDDING)
        )

    @staticmethod
    def combined(overlap: float, cosine: float) -> float:
        return max(overlap, (cosine - 0.7) / 0.3 if cosine else 0.0)


COPIED_SUPPORT = 0.8  # a claim copies a span holding this share of its words; a cited span scoring this is close enough
COPIED_MARGIN = 0.25  # how much closer that span must be than the cited one's before the citation moves to it


@dataclass
class _Support:
    passage_index: int
    span: Span
    score: float


class CitationVerifier:
    """Checks an answer's ``[n]`` markers against the numbered passages it was given."""

    def __init__(self, embeddings: Embeddings | None = None, known_names: str = "", request: str = "",
                 places: Iterable[str] = ()) -> None:
        self.scorer = SupportScorer(embeddings)
        # names the request itself vouches for, not the library: a room's participants ("proposed by Ana")
        self.known_names = known_names
        # names wherever a claim puts them, its first word included: the request's, the participants', ``places``
        self.names_anywhere = name_keys(request, [*re.findall(r"[^\W\d_]{2,}", known_names), *places])
        self._languages: dict[str, str] = {}

    def _claim_language(self, claim: str) -> str:
        if claim not in self._languages:
            self._languages[claim] = detect_language(claim)
        return self._languages[claim]

    def names_unknown_to(self, claim: str, passage: Passage) -> list[str]:
        """The names of ``claim`` that ``passage`` (its text, title, publisher, section, country and region) never
        mentions; read only when the claim is in the passage's language, since names change across languages
        ("La Haye", "The Hague")."""
        language = self._claim_language(claim)
        if language != (passage.language or "en") or not claim_names(claim, self.names_anywhere, language):
            return []
        known = " ".join(filter(None, [passage.text, passage_identity(passage), passage.publisher,
                                       passage.country, passage.region, self.known_names]))
        return names_unsupported(claim, language, known, passage.language or "en", self.names_anywhere)

    def best_support(self, claim: str, passage: Passage, index: int, min_overlap: float = 0.0) -> _Support | None:
        """The span of ``passage`` that best supports ``claim`` (sharing at least ``min_overlap`` of its words), if any.

        A claim without a content word ("2", a list number left with its marker) states nothing to check: e5 scores
        two near-empty strings close, and a number alone matches any span that holds it. Nor does a passage support
        a claim about a name it never mentions (see ``NAME``).
        """
        if not content_words(claim) or self.names_unknown_to(claim, passage):
            return None
        spans = passage_spans(passage.text)
        self.scorer.prepare([s for s in spans if "\n" not in s.text][:40])
        best: _Support | None = None
        context = passage_numbers(passage)
        for span in spans:
            overlap, cosine, numbers_ok = self.scorer.score(claim, span, context)
            if overlap < min_overlap or not self.scorer.supports(overlap, cosine, numbers_ok):
                continue
            score = self.scorer.combined(overlap, cosine) - 0.002 * len(span.text) / 100  # prefer tighter spans
            if best is None or score > best.score:
                best = _Support(index, span, score)
        return best

    def verify(
        self, answer: str, passages: Sequence[Passage], strict: bool = False,
    ) -> tuple[str, list[Citation], VerificationReport]:
        """The answer with verified, renumbered markers; the citations; what was changed.

        An uncited sentence that a passage supports in its own words gets that citation ("added"). One that
        reads like a claim but that no passage supports is kept as a transition or suggestion, marked with
        ``UNSOURCED`` and counted, unless it says what the sources say (:func:`attributes_to_sources`) or
        ``strict`` is set (a draft that cited nothing at all): then it is dropped. A claim that
        copies another passage's words while the one it cites only resembles it is cited to the one it copies.
        """
        report = VerificationReport()
        citations: list[Citation] = []
        keys: dict[tuple[str, int, int], int] = {}
        out: list[str] = []
        for sentence in split_sentences(answer):
            wanted = cited_numbers(sentence)
            claim = strip_markers(sentence).strip()
            supports: list[tuple[_Support, str]] = []
            if not wanted:
                claim_like = (bool(claim) and len(content_words(claim)) >= 4 and not claim.startswith("#")
                              and not is_question(claim))
                # A citation the model did not make is found by searching every span of every passage; the best
                # of so many embedding similarities is often a loose match, so it takes the passage's own words.
                found = self._retarget(claim, passages, set(), LEXICAL_SUPPORT) if claim_like else None
                if found is None:  # a transition, a suggestion or a question: kept, counted
                    # ...but not a claim about what the sources say ("The Convention acknowledges…"): that needs
                    # a checked citation, like any other
                    if claim_like and (strict or attributes_to_sources(claim)):
                        report.dropped_sentences.append(claim)
                        continue
                    report.uncited_sentences += int(claim_like)
                    out.append(mark_unsourced(sentence) if claim_like else sentence)
                    continue
                supports.append((found, "added"))  # stated from a passage without saying so: cite it
                report.added += 1
            for n in dict.fromkeys(wanted):
                support = None
                if 1 <= n <= len(passages):
                    support = self.best_support(claim, passages[n - 1], n - 1)
                if support is not None:
                    closer = self._copied_from(claim, passages, support, {s.passage_index for s, _ in supports})
                    if closer is not None:
                        supports.append((closer, "retargeted"))
                        report.retargeted += 1
                    else:
                        supports.append((support, "kept"))
                        report.kept += 1
                    continue
                alternative = self._retarget(claim, passages, exclude={s.passage_index for s, _ in supports})
                if alternative is not None:
                    supports.append((alternative, "retargeted"))
                    report.retargeted += 1
                else:
                    report.removed += 1
            if not supports:
                if is_question(claim):  # a question asserts nothing: it stays, without the citation it did not need
                    out.append(strip_markers(sentence))
                    continue
                report.dropped_sentences.append(claim)
                continue
            report.supported_sentences += 1
            numbers = []
            for support, status in supports:
                passage = passages[support.passage_index]
                key = (passage.chunk_id, support.span.start, support.span.end)
                if key not in keys:
                    keys[key] = len(citations) + 1
                    citations.append(_citation(keys[key], passage, support, status))
                if keys[key] not in numbers:
                    numbers.append(keys[key])
            trailing = sentence[len(sentence.rstrip()):]
            body = strip_markers(sentence).rstrip()
            marks = "".join(f"[{n}]" for n in numbers)
            if body and body[-1] in ".!?:;":
                out.append(f"{body[:-1]} {marks}{body[-1]}{trailing}")
            else:
                out.append(f"{body} {marks}{trailing}")
        return "".join(out).strip(), citations, report

    def _copied_from(
        self, claim: str, passages: Sequence[Passage], cited: _Support, exclude: set[int],
    ) -> _Support | None:
        """Another passage whose words ``claim`` copies, when the one it cites only resembles it: small models
        quote one passage and put another's number on it."""
        if cited.score >= COPIED_SUPPORT:
            return None
        other = self._retarget(claim, passages, exclude | {cited.passage_index}, COPIED_SUPPORT)
        return other if other is not None and other.score >= cited.score + COPIED_MARGIN else None

    def _retarget(
        self, claim: str, passages: Sequence[Passage], exclude: set[int], min_overlap: float = 0.0,
    ) -> _Support | None:
        best: _Support | None = None
        for index, passage in enumerate(passages):
            if index in exclude:
                continue
            support = self.best_support(claim, passage, index, min_overlap)
            if support is not None and (best is None or support.score > best.score):
                best = support
        return best


def _citation(n: int, passage: Passage, support: _Support, status: str) -> Citation:
    _doc, _page, start, end = place_of(passage, support.span)
    return Citation(
        n=n, chunk_id=passage.chunk_id, doc_id=passage.doc_id, source_file=passage.source_file, title=passage.title,
        publisher=passage.publisher, year=passage.year, page=passage.page, section=passage.section,
        quote=support.span.text, page_index=passage.page_index, quote_start=start,
        quote_end=end, support=round(support.score, 3), status=status,
    )
