"""Turn a user's request into retrieval queries.

Requests for briefs and drafts carry framing ("Brief me before a meeting with…",
"grounded in the library") that says what to produce, not what to find: ``strip_framing``
removes it. Many requests also ask several things at once ("their stated principles and what
they want culture to achieve"): ``request_facets`` splits them, so that retrieval can find
evidence for every part, not only for the most generic one.
"""

from __future__ import annotations

import re

FRAMING_PATTERNS = [
    r"^(please\s+)?((can|could|would)\s+you\s+)?",
    r"^(brief|prepare|write|draft|give|produce|create|make)\s+(me|us)?\s*",
    r"^((a|an|the)\s+)?((short|one-page|quick|pre-meeting|joint)\s+)*((brief(ing)?|recommendation|note|summary|draft)\b)?\s*",
    r"^(for|to)\s+(our|my|the)\s+\w+\s*",
    r"^(before|ahead of)\s+(a|the|our)\s+meeting\s+(with\s+)?",
    r"^(on|about|regarding)\s+",
    r",?\s*(grounded|based)\s+(in|on)\s+(the\s+)?[^,.;:]*\b(library|documents?|sources?)\b[^,.;:]*",
    r"\b(in|from)\s+the\s+library\b",
]

CONJUNCTION = r"(?:and|et|und|y|e|và|ainsi que|sowie)"
QUESTION_WORD = (r"(?:what|how|when|which|who|why|whether|about|que|quel|quelle|qui|comment|pourquoi|sur|was|wie|wann|"
                 r"wer|warum|ob|qué|cómo|cuándo|quién|por qué|sobre)")
# Where a request's facets part: sentence and colon ends, commas and brackets (with a following
# "and"), and an "and" that opens another question ("…when that duty can be set aside, and what…").
FACET_BREAK = re.compile(
    rf"(?<=[.?!;:])\s+|:\s*|[,()]\s*(?:{CONJUNCTION}\s+)?|\s{CONJUNCTION}\s+(?={QUESTION_WORD}\b)",
    re.IGNORECASE,
)
QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|«[^»]+»|„[^“”]+[“”]|(?<!\w)'[^']+'(?!\w)")
MIN_FACET_WORDS = 3
MAX_FACETS = 6


def strip_framing(question: str) -> str:
    """The topic of a request, without its "brief me / draft a recommendation" framing."""
    topic = question.strip()
    for pattern in FRAMING_PATTERNS:
        topic = re.sub(pattern, "", topic, flags=re.IGNORECASE).strip(" ,.;:")
    topic = re.sub(r"\s+", " ", topic).strip()
    return topic if len(topic) >= 3 else question.strip()


def request_facets(question: str) -> list[str]:
    """The parts of a multi-facet request, each searched on its own ([] for a one-facet request).

    "Brief me before meeting X: their principles, what they want culture to achieve, and …" asks
    for evidence on each part; one query for the whole request finds the most generic passages and
    misses the rest.
    """
    topic = strip_framing(question)
    quotes = [m.group(0) for m in QUOTED.finditer(topic)]  # a quotation is never cut
    for i, quote in enumerate(quotes):
        topic = topic.replace(quote, f"\x00{i}\x00", 1)
    pieces = [re.sub(r"\x00(\d+)\x00", lambda m: quotes[int(m.group(1))], piece).strip(" ,.;:?!¿¡'\"")
              for piece in FACET_BREAK.split(topic)]
    facets = [piece for piece in pieces if len(piece.split()) >= MIN_FACET_WORDS]
    return facets[:MAX_FACETS] if len(facets) > 1 else []
