"""The documents a request names: its counterparts, and the instruments it cites.

A brief "before a meeting with Vietnamese counterparts" should lead with what Vietnam's own
documents say. We match the request's words against each document's country, region and
publisher acronyms, tolerating demonyms and inflections ("Vietnamese", "vietnamiens" →
Vietnam; "UNESCO's" → UNESCO) by comparing word stems, and accent-insensitively.

Users also cite instruments the way diplomats do, by year: "the 1970 Convention", "la
Convention de 1970", "Hague 1954". A document is cited when the request holds its year next
to its type ("convention", "Konvention", "declaración"…, in any of the app's languages) or
next to a word of its title or publisher; or, without a year, words of its title or publisher
touching its type ("the World Heritage Convention", "the Hague Convention").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from assistant.language import detect_language
from assistant.types import DocumentInfo, Passage

GENERIC_PLACES = frozenset({"global", "international", "world", "worldwide", "multilateral"})
ACRONYM = re.compile(r"\b[A-Z]{3,}\b")
YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
YEAR_CONTEXT_WORDS = 4  # how far (in words) from a year its document type may stand
# A citation identifies a document: a year and type shared by more documents than this (a large library's
# "2005 report") identify none, and searching within them all would cost more than it finds.
MAX_DOCUMENTS_PER_CITATION = 3
# Document types as users write them (accent-free, lower case), by the English word in doc_type.
TYPE_WORDS = {
    "convention": ("convention", "konvention", "convencion", "ubereinkommen", "abkommen", "cong uoc"),
    "declaration": ("declaration", "erklarung", "declaracion", "tuyen bo"),
    "recommendation": ("recommendation", "empfehlung", "recomendacion", "khuyen nghi"),
    "charter": ("charter", "charte", "charta", "carta", "hien chuong"),
    "report": ("report", "rapport", "bericht", "informe", "bao cao"),
    "strategy": ("strategy", "strategie", "estrategia", "chien luoc"),
    "article": ("article", "artikel", "articulo", "bai bao", "bai viet"),
    "protocol": ("protocol", "protocole", "protokoll", "protocolo", "nghi dinh thu"),
}


def fold(text: str) -> str:
    """Lower case without accents."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


# Words skipped when counting how near a year its document's type or name stands.
FUNCTION_WORDS = frozenset(fold(w) for w in (
    "the of on for and a an its de la le les du des von der die das del el los las y et und năm của về"
).split())


def _stem(word: str) -> str:
    return word if len(word) < 5 else word[: max(4, len(word) - 2)]


def _named(value: str, words: Sequence[str], exact: bool = False) -> bool:
    """Every word of ``value`` appears in ``words`` (as a stem prefix unless ``exact``)."""
    parts = [p for p in re.findall(r"\w+", fold(value)) if len(p) >= 3]
    if not parts or all(p in GENERIC_PLACES for p in parts):
        return False
    for part in parts:
        if exact or len(part) < 5:
            if part not in words:
                return False
        elif not any(w.startswith(_stem(part)) for w in words):
            return False
    return True


def counterpart_names(info: DocumentInfo) -> list[tuple[str, bool]]:
    """(name, exact) pairs a request may use for this document's country, region or publisher."""
    names = [(info.country, False), (info.region, False)]
    names += [(acronym, True) for acronym in ACRONYM.findall(info.publisher or "")]
    return [(name, exact) for name, exact in names if name]


def named_documents(request: str, documents: Iterable[DocumentInfo]) -> set[str]:
    """Ids of the documents whose country, region or publisher the request names ("Việt Nam", as Vietnamese
    writes it, names Vietnam: for a place, each pair of adjacent words is also tried as one; an acronym must
    stand as a word of its own)."""
    words = re.findall(r"\w+", fold(request))
    joined = words + [first + second for first, second in zip(words, words[1:])]
    return {
        doc.doc_id for doc in documents
        if any(_named(name, words if exact else joined, exact) for name, exact in counterpart_names(doc))
    }


def _type_words(doc_type: str) -> list[str]:
    """The words users write for a document of ``doc_type`` ("lab report" → report, rapport, Bericht…)."""
    folded = fold(doc_type)
    return [word for key, words in TYPE_WORDS.items() if key in folded for word in words]


def _is_type_word(folded: str) -> bool:
    """Whether a folded word is a document type as users write it, or starts with one ("conventions")."""
    return folded.startswith(TYPE_WORD_STARTS)


def _year_context(request: str, year: re.Match[str]) -> tuple[list[str], list[str]]:
    """The words within YEAR_CONTEXT_WORDS before and after a year of the request, function words not counted:
    "la Convention de La Haye de 1954" holds its type two content words from the year, "the Convention of 1970" one."""
    def nearest(words: list[str]) -> list[str]:
        kept, content = [], 0
        for word in words:
            if content == YEAR_CONTEXT_WORDS:
                break
            kept.append(word)
            content += fold(word) not in FUNCTION_WORDS
        return kept

    before = nearest(re.findall(r"\w+", request[: year.start()])[::-1])[::-1]
    after = nearest(re.findall(r"\w+", request[year.end():]))
    return before, after


def _names_a_type(words: Sequence[str], type_words: Iterable[str]) -> bool:
    """Whether ``words`` hold one of ``type_words`` (accent-insensitively, as a word start: "Conventions")."""
    near = fold(" ".join(words))
    return any(re.search(rf"\b{re.escape(word)}", near) for word in type_words)


@lru_cache(maxsize=8192)
def _name_words(title: str, publisher: str) -> frozenset[str]:
    """The words of four letters or more of a document's title and publisher, folded (read once per document:
    a request's years can match hundreds of documents of a large library)."""
    return frozenset(w for w in re.findall(r"\w+", fold(f"{title} {publisher}")) if len(w) >= 4)


def cited_documents(request: str, documents: Iterable[DocumentInfo]) -> set[str]:
    """Ids of the documents the request cites by year ("the 2005 Convention", "Hague 1954")."""
    years = {match.group(1): match for match in YEAR.finditer(request)}
    if not years:
        return set()
    contexts = {}  # year → the words around it, and the capitalised ones right next to it
    for year, match in years.items():
        before, after = _year_context(request, match)
        contexts[year] = (before + after, frozenset(fold(w) for w in before[-1:] + after[:1] if w[:1].isupper()))
    types_named: dict[tuple[str, str], bool] = {}  # (year, document type) → whether the year's context names it
    cited: dict[str, set[str]] = {}  # year → documents it cites
    for doc in documents:
        year = str(doc.year) if doc.year else None
        if year not in contexts:
            continue
        near, adjacent = contexts[year]
        if (year, doc.doc_type) not in types_named:
            types_named[year, doc.doc_type] = _names_a_type(near, _type_words(doc.doc_type))
        # or a proper name right next to the year ("Hague 1954") that the title or publisher holds
        if types_named[year, doc.doc_type] or _name_words(doc.title, doc.publisher) & adjacent:
            cited.setdefault(year, set()).add(doc.doc_id)
    return {doc_id for docs in cited.values() if len(docs) <= MAX_DOCUMENTS_PER_CITATION for doc_id in docs}


def titled_documents(request: str, documents: Iterable[DocumentInfo]) -> set[str]:
    """Ids of the documents the request cites by name without a year ("the Hague Convention", "under the intangible
    heritage convention", "the Convention on Cultural Diversity"): the words touching a type word ("convention") —
    before it, or after it over function words — that are words of a title or publisher of that type. The document
    holding most of them is cited when no other holds as many, and it holds two or one that no other document has."""
    tokens = re.findall(r"\w+", fold(request))
    if not any(_is_type_word(token) for token in tokens):
        return set()
    by_type, documents_with = _titles_by_type(tuple((d.doc_id, d.doc_type, d.title, d.publisher) for d in documents))
    cited: set[str] = set()
    for i, token in enumerate(tokens):
        names, known = next((entry for word, entry in by_type.items() if token.startswith(word)), ({}, frozenset()))
        touching: set[str] = set()
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(tokens) and (tokens[j] in known or (step > 0 and tokens[j] in FUNCTION_WORDS)):
                if tokens[j] in known:
                    touching.add(tokens[j])
                j += step
        if not touching:
            continue
        scores = {doc_id: len(words & touching) for doc_id, words in names.items()}
        best = max(scores.values())
        leaders = [doc_id for doc_id, score in scores.items() if score == best]
        if best == 0 or len(leaders) > 1:
            continue
        if best == 1:
            (word,) = names[leaders[0]] & touching
            if documents_with[word] > 1:  # one name word, which another document holds too
                continue
        cited.add(leaders[0])
    return cited


@lru_cache(maxsize=4)
def _titles_by_type(
    documents: tuple[tuple[str, str, str, str], ...],
) -> tuple[dict[str, tuple[dict[str, frozenset[str]], frozenset[str]]], Counter[str]]:
    """For each type word, the name words of each document of that type and all of them together; and for each
    name word, how many documents hold it. ``documents`` are (id, type, title, publisher): built once per library
    state, not per request (2,000 documents at 100k chunks)."""
    names_by_type: dict[str, dict[str, frozenset[str]]] = {}
    documents_with: Counter[str] = Counter()
    for doc_id, doc_type, title, publisher in documents:
        words = _name_words(title, publisher)
        documents_with.update(words)
        for type_word in _type_words(doc_type):
            names_by_type.setdefault(type_word, {})[doc_id] = words
    return {word: (names, frozenset().union(*names.values())) for word, names in names_by_type.items()}, documents_with


MIN_TOPIC_WORDS = 2  # content words a request must keep without its citations to be searched that way


def without_citations(request: str) -> str:
    """The request without the instruments it cites by year ("What does the 1970 Convention say about export
    certificates?" → "What does say about export certificates?"): within a cited document its name and year tell
    passages apart only by whether they repeat them (a signature clause, a registration article).

    A citation runs from the year over its type word and the capitalised names and function words around them
    (``_citation_side``). A request that would keep fewer than
    MIN_TOPIC_WORDS content words is returned whole.
    """
    tokens = list(re.finditer(r"\w+", request))
    drop: set[int] = set()

    def is_name(j: int) -> bool:  # capitalised, and not only because it opens a sentence
        opens = j == 0 or re.search(r"[.?!¿¡]\s*$", request[tokens[j - 1].end():tokens[j].start()])
        return tokens[j].group(0)[:1].isupper() and not opens

    def part_of_citation(j: int) -> bool:
        word = tokens[j].group(0)
        folded = fold(word)
        return not YEAR.fullmatch(word) and (
            folded in FUNCTION_WORDS or is_name(j) or _is_type_word(folded))

    for i, token in enumerate(tokens):
        if not YEAR.fullmatch(token.group(0)):
            continue
        before, after = _year_context(request, token)
        next_to_name = (i > 0 and is_name(i - 1)) or (i + 1 < len(tokens) and is_name(i + 1))
        if not _names_a_type(before + after, ALL_TYPE_WORDS) and not next_to_name:
            continue  # a bare year ("In 2024, …") cites nothing
        drop.add(i)
        for step in (-1, 1):
            run, j = [], i + step
            while 0 <= j < len(tokens) and part_of_citation(j):
                run.append(j)
                j += step
            drop.update(_citation_side([fold(tokens[j].group(0)) for j in run], run, title_follows=step > 0))
    if not drop:
        return request
    kept = [t.group(0) for i, t in enumerate(tokens) if i not in drop]
    if sum(fold(w) not in FUNCTION_WORDS for w in kept) < MIN_TOPIC_WORDS:
        return request
    text, end = [], 0
    for i, token in enumerate(tokens):
        if i in drop:
            text.append(request[end:token.start()])
            end = token.end()
    text.append(request[end:])
    return re.sub(r"\s+", " ", re.sub(r"\s+([,.;:?!])", r"\1", "".join(text))).strip(" ,;:")


def _citation_side(words: list[str], run: list[int], title_follows: bool) -> list[int]:
    """Of the names, type and function words on one side of a cited year (``run``, nearest first; ``words``
    folded), those that belong to its citation: up to the nearest type word ("la Convention de La Haye de 1954"),
    then after the year the title that follows it ("the 2005 Convention on the Protection … of Cultural
    Expressions"), before it only the names touching it ("the World Heritage Convention of 1972"). Without a type
    word, the names touching the year ("the Hague 1954"). Further than that stands another thing: "the
    Intergovernmental Committee of the 2005 Convention", "Abkommen von 1954 von Besatzungsmächten" (German nouns
    are capitalised)."""
    types = [n for n, word in enumerate(words) if _is_type_word(word)]
    if types and title_follows:
        return run
    end = types[0] + 1 if types else 0
    while end < len(run) and words[end] not in FUNCTION_WORDS:  # names touching it
        end += 1
    while end < len(run) and words[end] in FUNCTION_WORDS:  # and the articles before them
        end += 1
    return run[:end]


NAME_CONTEXT_WORDS = 2  # how far from a cited year its instrument's name words stand ("the 1995 UNIDROIT Convention")


ALL_TYPE_WORDS = frozenset(word for words in TYPE_WORDS.values() for word in words)
TYPE_WORD_STARTS = tuple(ALL_TYPE_WORDS)  # for str.startswith


def instrument_citations(request: str) -> list[tuple[str, frozenset[str]]]:
    """The instruments a request cites by year and type ("the 1995 UNIDROIT Convention", "Charter of Luxor of
    1997", "la Convention de 1970"): (year, the capitalised name words next to it), one per citation. German
    capitalises every noun ("von 2022 über Kultur"): there only acronyms and the like name an instrument, and they
    come first in a compound ("die UNIDROIT-Konvention von 1995")."""
    citations = []
    first_word = re.findall(r"\w+", request)[:1]
    german: bool | None = None  # read once, at the first citation
    for match in YEAR.finditer(request):
        before, after = _year_context(request, match)
        if not _names_a_type(before + after, ALL_TYPE_WORDS):
            continue
        if german is None:
            german = detect_language(request) == "de"
        if german:
            names = frozenset(word for word in before[-NAME_CONTEXT_WORDS - 2:] + after[:NAME_CONTEXT_WORDS]
                              if IDENTIFIER.fullmatch(word) and not YEAR.fullmatch(word) and word not in first_word)
        else:
            names = frozenset(
                word for word in before[-NAME_CONTEXT_WORDS:] + after[:NAME_CONTEXT_WORDS]
                if word[:1].isupper() and not YEAR.fullmatch(word) and word not in first_word
                and not _is_type_word(fold(word)) and fold(word) not in FUNCTION_WORDS
            )
        citations.append((match.group(1), names))
    return citations


HELD, MENTIONED, MISSING = "held", "mentioned", "missing"  # what the library has of a source a request cites


def instrument_holdings(
    citations: Sequence[tuple[str, frozenset[str]]], documents: Iterable[DocumentInfo], evidence: str
) -> list[str]:
    """For each cited instrument (``instrument_citations``), what the library has of it: ``HELD`` (a document of
    that year), ``MENTIONED`` (no such document, but ``evidence``, the retrieved passages' text in lower case,
    names it: its name words if it has any, "UNIDROIT", else its year) or ``MISSING``."""
    years = {str(doc.year) for doc in documents if doc.year}
    holdings = []
    for year, names in citations:
        mentioned = all(name.lower() in evidence for name in names) if names else year in evidence
        holdings.append(HELD if year in years else MENTIONED if mentioned else MISSING)
    return holdings


IDENTIFIER = re.compile(r"[A-Z][A-Z0-9]+|\w*\d\w*|[A-Z][a-z]+[A-Z]\w*")  # ASEF, G7, LinkUp
# Words saying that a named event took place, between its name and its year ("ASEF LinkUp held in 2025", "…that
# took place in 2025", "tenue en 2025", "celebrada en 2025", "abgehalten 2025", "diễn ra năm 2025"). Accent-free.
EVENT_WORDS = frozenset("""
    held hosted organised organized convened took taking place which that was were
    tenue tenu tenues organisee organise qui a eu lieu
    celebrada celebrado organizada organizado que tuvo lugar
    abgehalten veranstaltet stattgefunden das die der
    dien ra to chuc
""".split())
# What may stand between a name and its year: "ASEF LinkUp in 2025", "… held in 2025".
DATE_LINK_WORDS = FUNCTION_WORDS | frozenset({"in", "en", "im", "at", "a", "à", "nam"}) | EVENT_WORDS
MAX_DATE_LINK_WORDS = 4


def dated_names(request: str) -> list[tuple[str, frozenset[str]]]:
    """Identifiers a request dates with a year standing right next to them, other than an instrument's citation
    (see ``instrument_citations``): "ASEF LinkUp in 2025", "the 2023 G7", "the EU's 2016 Joint Communication".
    (year, the identifiers), one per dated year. Only acronyms, names with a digit or an inner capital count:
    they read the same in every language, where "La Haye" and "The Hague" do not."""
    text = re.sub(r"['’]s\b", "", request)
    matches = list(re.finditer(r"[\w-]+|[^\w\s'’]", text))
    tokens = [match.group(0) for match in matches]
    citations = []
    for i, token in enumerate(tokens):
        if not YEAR.fullmatch(token) or _names_a_type(sum(_year_context(text, matches[i]), []), ALL_TYPE_WORDS):
            continue
        names: list[str] = []
        for step in (-1, 1):
            j, links = i + step, 0
            while 0 < j < len(tokens):  # the request's first word is capitalised anyway
                word = tokens[j]
                if word[:1].isupper() and not YEAR.fullmatch(word) and fold(word) not in FUNCTION_WORDS:
                    names.append(word)
                elif not names and links < MAX_DATE_LINK_WORDS and fold(word) in DATE_LINK_WORDS:
                    links += 1
                else:
                    break
                j += step
        identifiers = frozenset(part for name in names for part in name.split("-") if IDENTIFIER.fullmatch(part))
        if identifiers:
            citations.append((token, identifiers))
    return citations


def _mentions(text: str, identifier: str) -> bool:
    """Whether folded ``text`` holds ``identifier`` as a word, give or take a plural ("ASEF", "G7s"; "UN" is not "United")."""
    return re.search(rf"\b{re.escape(fold(identifier))}\w{{0,2}}\b", text) is not None


def dated_name_holdings(
    citations: Sequence[tuple[str, frozenset[str]]], documents: Iterable[DocumentInfo], passages: Sequence[Passage]
) -> list[str]:
    """For each of ``dated_names``, what the library has of it: ``HELD`` (a document of that year naming the
    identifiers in its metadata or a retrieved passage of it), ``MENTIONED`` (no such document, but a retrieved
    passage names them together with the year) or ``MISSING``."""
    by_year: dict[str, list[DocumentInfo]] = {}
    for doc in documents:
        if doc.year:
            by_year.setdefault(str(doc.year), []).append(doc)
    texts = [(p.doc_id, fold(f"{p.section} {p.text}")) for p in passages]
    holdings = []
    for year, names in citations:
        that_year = (
            fold(" ".join([doc.title, doc.publisher, doc.country, doc.region, doc.source_file]))
            + " " + " ".join(text for doc_id, text in texts if doc_id == doc.doc_id)
            for doc in by_year.get(year, [])
        )  # what each document of that year says of itself and in its retrieved passages
        if any(all(_mentions(about, name) for name in names) for about in that_year):
            holdings.append(HELD)
        elif any(year in text and all(_mentions(text, name) for name in names) for _, text in texts):
            holdings.append(MENTIONED)
        else:
            holdings.append(MISSING)
    return holdings


CONJUNCTIONS = frozenset({"and", "or", "et", "ou", "und", "oder", "y", "o", "e", "va", "hoac"})  # folded


def cited_as(request: str, year: str, names: frozenset[str]) -> str:
    """How ``request`` words a source it cites by ``year`` and name words, for a message: the year with the run of
    name words, type words and the words that link them (``DATE_LINK_WORDS``) around it ("MONDIACULT 2022
    declaration", "ASEF LinkUp in 2025", "Convention de La Haye de 1954"), link words trimmed from both ends; the
    year alone if the request does not hold it as a word."""
    tokens = list(re.finditer(r"[\w'’-]+|[^\w\s]", request))
    at = next((i for i, token in enumerate(tokens) if token.group(0) == year), None)
    if at is None:
        return year

    def part_of_citation(word: str) -> bool:  # a conjunction starts another citation ("the 1970 and the 1995 …")
        parts = re.sub(r"['’]s$", "", word).split("-")
        return fold(word) not in CONJUNCTIONS and any(
            part in names or _is_type_word(fold(part)) or fold(part) in DATE_LINK_WORDS for part in parts)

    first = last = at
    while first > 0 and part_of_citation(tokens[first - 1].group(0)):
        first -= 1
    while last < len(tokens) - 1 and part_of_citation(tokens[last + 1].group(0)):
        last += 1
    while first < at and fold(tokens[first].group(0)) in DATE_LINK_WORDS:
        first += 1
    while last > at and fold(tokens[last].group(0)) in DATE_LINK_WORDS:
        last -= 1
    return request[tokens[first].start():tokens[last].end()]
