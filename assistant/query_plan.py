"""Turn a user's request into retrieval queries.

Requests for briefs and drafts carry framing ("Brief me before a meeting with…",
"grounded in the library", "Rédigez une recommandation conjointe…") that says what to produce,
not what to find: ``strip_framing`` removes it, in the languages users write in. Many requests
also ask several things at once ("their stated principles and what they want culture to achieve";
a list after a colon: "multilingual content, access for under-resourced regions, …"):
``request_facets`` splits them, so that retrieval can find evidence for every part, not only for
the most generic one. A part that only says how to write ("Cite the principles", "so I can show
we listen", "It should cover", "Debe incluir") or only names the sources ("What do the UNESCO texts
say") is not searched: in the interleaved ranking it would take a place from real evidence.
"""

from __future__ import annotations

import re

from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH, STOPWORDS_GERMAN, STOPWORDS_SPANISH

from assistant.counterparts import fold

# Verbs that ask for a piece of writing, as users put them (imperative or polite form, with "me"/"us").
REQUEST_VERBS = (
    r"brief|prepare|write|draft|give|produce|create|make|cite|quote|ground|base|combine|summari[sz]e|outline|list"
    r"|rédige[rz]?|prépare[rz]?|écri(?:s|vez)|donne[rz]?|fai(?:s|tes)|résume[rz]?|cite[rz]?|propose[rz]?"
    r"|prepár(?:a|e)(?:me|nos)?|prepara(?:me|nos)?|redact(?:a|e)(?:me|nos)?|escrib(?:e|a)|da(?:me|nos)|elabor(?:a|e)"
    r"|resum(?:e|a)|cit(?:a|e)|bereiten\s+sie|erstellen\s+sie|schreiben\s+sie|verfassen\s+sie|geben\s+sie|fassen\s+sie"
    r"|formulieren\s+sie|soạn(?:\s+thảo)?|chuẩn\s+bị|viết|tóm\s+tắt|đưa\s+ra"
)
# The kinds of writing requested.
WRITING_NOUNS = (
    r"brief(?:ing)?|recommendations?|note|summary|draft|memo|recommandations?|synthèse|informe|nota|recomendaci(?:ón|ones)"
    r"|resumen|bericht|empfehlung(?:en)?|notiz|zusammenfassung|vermerk|bản\s+tóm\s+tắt|khuyến\s+nghị|báo\s+cáo|bản\s+ghi\s+nhớ"
)
FRAMING_PATTERNS = [
    r"^(please\s+|bitte\s+|hãy\s+|s'il\s+vous\s+plaît,?\s+|por\s+favor,?\s+)?((can|could|would)\s+you\s+)?",
    rf"^({REQUEST_VERBS})(-moi|-nous|\s+me|\s+us|\s+mir|\s+uns|\s+mich|\s+cho\s+(tôi|chúng\s+tôi))?\b\s*",
    r"^((a|an|the|une?|la|le|les|el|los|las|una?|einen?|eine|die|der|das|một|bản)\s+)?"
    r"((short|one-page|quick|pre-meeting|joint|brève|courte|conjointe|breve|conjunta|kurze[nr]?|gemeinsame[nr]?|ngắn)\s+)*"
    rf"(({WRITING_NOUNS})\b)?\s*((conjointe|conjunta|commune|gemeinsame|chung)\b)?\s*",
    # the addressee: "for our delegation", "to our culture and trade ministries (on …)"
    r"^(for|to)\s+(our|my|the)\s+(?:[^,.;:]*?\s+(?=(?:on|about|regarding)\s)|\w+\s*)",
    r"^(before|ahead of)\s+(a|the|our)\s+meeting\s+(with\s+)?",
    r"^(on|about|regarding)\s+",
    r"^(i|we)\s+(need|want|would\s+like)\s+",
    r",?\s*(grounded|based)\s+(in|on)\s+(the\s+)?[^,.;:]*\b(library|documents?|sources?)\b[^,.;:]*",
    r",?\s*(en\s+(vous|t')\s*appuyant|basándo(?:se|te|nos)|fundamentad[oa]|gestützt|auf\s+grundlage|dựa\s+(trên|vào))"
    r"\s+[^,.;:]*\b(bibliothèque|biblioteca|bibliothek|thư\s+viện|textes?|documents?|documentos?|dokumente[n]?|tài\s+liệu)\b[^,.;:]*",
    r"\b(in|from)\s+the\s+library\b",
]
INSTRUCTION = re.compile(rf"^({REQUEST_VERBS})\b", re.IGNORECASE)
# A part that only says why or how to write, not what to find.
PURPOSE_ONLY = re.compile(
    r"^(so(\s+that)?\s+(i|we)\s+can|in\s+order\s+to\s+(show|make|help)|afin\s+(de|que)|pour\s+que|para\s+que|damit|để\s+(tôi|chúng))\b",
    re.IGNORECASE,
)
STOPWORDS = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_FRENCH) | frozenset(STOPWORDS_GERMAN) | frozenset(STOPWORDS_SPANISH)

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
# Words that point at the sources rather than at a topic ("What do the UNESCO texts say", "grounded in the
# conventions", "selon le rapport de l'ASEF"): a part made only of these, stop words, years and acronyms names no
# evidence to search for. Accent-free, lower case.
SOURCE_WORDS = frozenset("""
    text texts document documents library source sources report reports article articles convention conventions
    declaration declarations instrument instruments charter unesco lab say says said according grounded based cite
    citing what do does did is are
    texte textes bibliotheque rapport rapports disent dit selon appuyant vous fonde fondee que quoi qu est
    texto textos documento documentos biblioteca fuente fuentes informe informes convencion convenciones declaracion
    instrumento instrumentos dicen dice segun basandose lo
    dokument dokumente bibliothek quelle quellen bericht berichte konvention ubereinkommen erklarung sagt sagen laut
    gemass was steht
    theo tai lieu thu vien cong uoc tuyen bo gi noi
""".split())
# Words that only say what to write and for which occasion ("It should cover", "these sections", "Debe incluir",
# "Merci de proposer un texte structuré qui traite", "một bản tóm tắt trước cuộc họp gồm"): with the source words,
# a part made only of these asks for no evidence either. Accent-free, lower case.
WRITING_WORDS = frozenset("""
    brief briefing note notes memo draft drafting drafted recommendation recommendations summary text paragraph
    paragraphs operative section sections point points part parts cover covers covering include includes including
    address structure structured should must need needs want wants please following short joint one two three four
    five six page meeting next week we our us i my me you your talking answer answers answering
    entretien reunion semaine prochaine propose proposer proposez traite traitent traiter inclure comprendre
    paragraphe paragraphes merci commune conjointe redigeons rediger trois quatre cinq elements langage
    debe deben incluir incluya incluye semana proxima seccion secciones punto puntos parrafo parrafos
    conjunta redactar queremos tres cuatro cinco
    kurzes kurzen kurze notiz abschnitt abschnitte punkt punkte enthalten umfassen vor bitte sollte soll muss gesprachspunkte
    treffen woche nachste gemeinsame drei vier funf
    ban tom tat truoc cuoc hop gom bao giup toi chung muc diem doan soan thao mot hai ba bon nam tuan sau
""".split())
NOT_TOPIC = frozenset(map(fold, STOPWORDS)) | SOURCE_WORDS | WRITING_WORDS
YEAR_OR_ACRONYM = re.compile(r"^(1[5-9]\d\d|20\d\d|[A-Z]{2,}\w*)$")
MIN_FACET_WORDS = 2  # a listed item ("alumni structures", "sobre las mujeres") is a facet
MIN_INSTRUCTION_CONTENT_WORDS = 2  # an instruction ("Cite the principles") is one only if its object names more
# A subject pronoun and one verb, cut off by a comma before the clause it introduces.
LEAD_IN = re.compile(r"^(?:we|i|wir|ich|nous|je|on|nosotros|yo|chúng\s+tôi|tôi)\s+\w+$", re.IGNORECASE)
# A sentence that asks for something: an instruction or a need, politely put or not.
ASKS = re.compile(
    rf"^(?:please\s+|bitte\s+|hãy\s+|merci\s+de\s+|por\s+favor,?\s+)?(?:(?:can|could|would)\s+you\s+)?"
    rf"(?:(?:{REQUEST_VERBS})\b|(?:i|we)\s+(?:need|want|would\s+like)\b|(?:j'ai|nous\s+avons)\s+besoin\b"
    rf"|necesit(?:o|amos)\b|(?:ich|wir)\s+brauche?n?\b|(?:tôi|chúng\s+tôi)\s+cần\b)",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
MAX_FACETS = 8  # a long brief's context sentences and its listed parts (six cut the last parts asked for)


def strip_framing(question: str) -> str:
    """The topic of a request, without its "brief me / draft a recommendation" framing."""
    topic = question.strip()
    for pattern in FRAMING_PATTERNS:
        topic = re.sub(pattern, "", topic, flags=re.IGNORECASE).strip(" ,.;:")
    topic = re.sub(r"\s+", " ", topic).strip()
    return topic if len(topic) >= 3 else question.strip()


def _facet(piece: str) -> str:
    """A part of a request as searched ("" if it asks for no evidence).

    A purpose ("so I can show…") asks for none; an instruction to the writer ("Cite the principles",
    "Combine the legal commitments") is searched for its object when that names something specific.
    """
    if not piece or PURPOSE_ONLY.match(piece):
        return ""
    facet = strip_framing(piece)
    words = re.findall(r"\w+", facet)
    content = sum(w.lower() not in STOPWORDS for w in words)
    if all(fold(w) in NOT_TOPIC or YEAR_OR_ACRONYM.match(w) for w in words):
        return ""  # it names no topic: only sources, or what to write and for which occasion
    needed = MIN_INSTRUCTION_CONTENT_WORDS if INSTRUCTION.match(piece) else 1
    return facet if len(piece.split()) >= MIN_FACET_WORDS and content >= needed else ""


def request_facets(question: str) -> list[str]:
    """The parts of a multi-facet request, each searched on its own ([] for a one-facet request).

    "Brief me before meeting X: their principles, what they want culture to achieve, and …" asks
    for evidence on each part; one query for the whole request finds the most generic passages and
    misses the rest. Parts listed after a colon come first (retrieval interleaves the parts in order).
    """
    topic = strip_framing(question)
    quotes = [m.group(0) for m in QUOTED.finditer(topic)]  # a quotation is never cut
    for i, quote in enumerate(quotes):
        topic = topic.replace(quote, f"\x00{i}\x00", 1)

    def facets_of(text: str) -> list[str]:
        pieces = [re.sub(r"\x00(\d+)\x00", lambda m: quotes[int(m.group(1))], piece).strip(" ,.;:?!¿¡'\"")
                  for piece in FACET_BREAK.split(text)]
        return [facet for facet in map(_facet, _with_lead_ins_joined(pieces)) if facet]

    # The parts listed after a colon are what is asked for; what comes before it (who writes, for whom, the
    # occasion: "Our lab group (arts NGOs plus two officials) wants a recommendation… Draft it covering: …")
    # is context, and is searched after them. Likewise the statements before the first sentence that asks
    # ("Nous préparons une réunion avec la délégation… Quels sont les principes…?", "…Please prepare talking
    # points that answer (1)…").
    # Once two parts or more are asked, the context adds one facet: its fullest statement ("wants to issue a joint
    # recommendation to ministries on protecting heritage from armed conflict"), not each detail of the occasion
    # ("museum staff", "two foreign-ministry officials"), which only brought passages on the setting.
    head, colon, tail = topic.partition(":")
    listed = facets_of(tail) if colon else []
    if len(listed) >= 2:
        facets = listed + _fullest(facets_of(head))
    else:
        occasion, asked = _occasion_and_questions(topic)
        questions = facets_of(asked)
        context = facets_of(occasion)
        facets = questions + (_fullest(context) if len(questions) >= 2 else context)
    return facets[:MAX_FACETS] if len(facets) > 1 else []


def _fullest(context: list[str]) -> list[str]:
    """The context facet of most words (the first of them), as a list of at most one."""
    return [max(context, key=lambda facet: len(facet.split()))] if context else []


def _with_lead_ins_joined(pieces: list[str]) -> list[str]:
    """``pieces`` with each lead-in (a pronoun and its verb before a comma: "Wir überlegen, …", "We wonder, …")
    joined to the clause it introduces, of which it is no facet of its own."""
    joined: list[str] = []
    lead_in = ""
    for piece in pieces:
        if LEAD_IN.match(piece):
            lead_in = f"{lead_in} {piece}".strip()
            continue
        joined.append(f"{lead_in} {piece}".strip())
        lead_in = ""
    return joined + ([lead_in] if lead_in else [])


def _occasion_and_questions(topic: str) -> tuple[str, str]:
    """``topic`` cut before its first sentence that asks (a question, or an instruction: "Please prepare talking
    points that answer (1)…", "I need…") when statements precede it; ("", topic) when none do."""
    sentences = SENTENCE_END.split(topic)
    first_ask = next((i for i, sentence in enumerate(sentences)
                      if sentence.rstrip().endswith("?") or ASKS.match(sentence)), 0)
    if first_ask == 0:
        return "", topic
    return " ".join(sentences[:first_ask]), " ".join(sentences[first_ask:])
