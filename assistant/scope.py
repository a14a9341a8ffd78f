"""Whether the library answers a request at all, read before any answer is written.

Nothing close enough (the best e5 cosine of the request's passages below ``ABSTAIN_DENSE_SCORE``); the names, years
and codes it asks about in no passage (``question_anchors``, ``missing_anchors``); a coming occasion no passage
announces (``asks_when_or_where_next``, ``announces_an_occasion``). The engine (``AnswerEngine.refuses``) adds the
sources a request dates that the library does not hold (:mod:`assistant.counterparts`). Calibrated on the question
sets in docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from assistant.citations import DEMONYM_SUFFIXES, GENERIC_ACRONYMS
from assistant.extractive import NAME_RUN
from assistant.language import detect_language
from assistant.types import Passage

# Below this best e5 cosine, nothing in the library is about the question; a question in another language than
# its passages' scores about 0.01 lower. Over the seven question sets the lowest answerable question scores 0.821 in
# the library's language and 0.810 across languages, while general-knowledge questions ("What is the GDP of France?")
# reach 0.87 (docs/evaluation.md, "Questions from outside the library").
ABSTAIN_DENSE_SCORE = 0.81
ABSTAIN_DENSE_SCORE_CROSS_LINGUAL = 0.80
ANCHOR = re.compile(r"\b(?:[A-Z][A-Za-z]*\d[\w-]*|\d+[A-Za-z]+\w*|[A-Z]{2,}[a-z]?|1[5-9]\d\d|20\d\d)\b")
URL = re.compile(r"\S*(?:://|www\.|\.(?:org|com|net|int|gov)\b)\S*", re.IGNORECASE)
# A question on when or where a coming occasion is: a library of documents answers it only if a passage announces it.
WHEN_OR_WHERE = re.compile(
    r"\b(when|where|what date|which date|deadline|quand|où|date limite|cuándo|dónde|fecha|plazo|wann|wo|frist"
    r"|khi nào|ở đâu|bao giờ|hạn chót)\b", re.I)
UPCOMING = re.compile(
    r"\b(next|upcoming|forthcoming|prochaine?s?|à venir|próxim[oa]s?|nächste[nmrs]?|kommende[nmrs]?|tới|sắp tới"
    r"|kế tiếp)\b", re.I)
ANNOUNCEMENT = re.compile(
    r"\b(next|upcoming|forthcoming|coming)\s+(edition|lab|session|meeting|conference|call|cohort|round)"
    r"|\bwill\s+(take place|be held|convene|open|close|gather)\b|\bapplications?\s+(will\s+)?(open|close)"
    r"|\b(deadline|call) for applications\b", re.I)


def question_anchors(question: str, passages: Sequence[Passage] = (), whole_names: bool = True) -> set[str]:
    """Acronyms, codes and years; in English questions also capitalised names inside the sentence ("…
    strategy: Hallyu export figures"), except words the ``passages`` use as common nouns: the "Culture" of
    "Ministry of Culture" names nothing the library could lack. With ``whole_names``, a name of several words
    that the passages do not all know is one anchor ("British Council"), not one per word."""
    anchors = set(ANCHOR.findall(question)) - GENERIC_ACRONYMS
    if detect_language(question) == "en":
        prose = URL.sub(" ", " ".join(p.text for p in passages))  # "asef.org/asia-europe" is no common noun
        names = [(match.group(1), [w for w in match.group(1).split()
                                   if not re.search(rf"\b{re.escape(w.lower())}\b", prose)])
                 for match in NAME_RUN.finditer(question)]
        unknown = set(missing_anchors({w for _, words in names for w in words}, passages)) if whole_names else set()
        for name, words in names:
            # a name of several words is one anchor when a word of it is unknown: the "Council" of "British
            # Council" is found in other names ("Executive Council") and must not make half of it mentioned
            anchors.update([name] if len(words) > 1 and unknown & set(words) else words)
    return anchors


def missing_anchors(anchors: Iterable[str], passages: Sequence[Passage]) -> list[str]:
    """The ``anchors`` (see ``question_anchors``) that no retrieved passage mentions (its text, or its document's
    metadata: "the 2005 Convention" is named by any passage of the convention of 2005). A demonym counts as its
    place: "Asian ministries" is about Asia, which the passages name."""
    haystack = " ".join(f"{p.title} {p.year or ''} {p.publisher} {p.section} {p.text}" for p in passages).lower()
    words = set(re.findall(r"\w+", haystack))

    def mentioned(anchor: str) -> bool:
        anchor = anchor.lower()
        return anchor in haystack or any(
            anchor.endswith(suffix) and anchor[: -len(suffix)] in words for suffix in DEMONYM_SUFFIXES
        )

    return sorted(a for a in anchors if not mentioned(a))


def read_across_languages(passages: Sequence[Passage], language: str) -> bool:
    """Whether the best passages are in another language than ``language``: e5's cosines run lower across languages,
    so the abstention and quote thresholds do too."""
    return any(p.language and p.language != language for p in passages[:3])


def asks_when_or_where_next(question: str) -> bool:
    """A sentence of the question asks when or where a coming occasion is ("Where and when is the next ASEF
    LinkUp?", "¿Cuándo será la próxima sesión?", "Wann ist die nächste Ausgabe?")."""
    return any(WHEN_OR_WHERE.search(sentence) and UPCOMING.search(sentence)
               for sentence in re.split(r"(?<=[.?!])\s+", question))


def announces_an_occasion(passages: Sequence[Passage]) -> bool:
    """A passage announces a coming occasion (its date, place or call); documents of past editions do not, and
    another edition's date would answer a question that was not asked."""
    return any(ANNOUNCEMENT.search(p.text) for p in passages)
