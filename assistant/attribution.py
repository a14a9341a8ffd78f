"""Whether a sentence says what the sources say.

A model's sentence that no passage supports is kept as its own link, suggestion or inference, marked as not from
the library ("Funders should align investments with project needs †"). One that puts its words in a source's mouth
("The Convention acknowledges sensitivities over disputed territories", "Die Haager Konvention fordert…", "According
to the report…", "Sie empfiehlt…") is a claim about the library, and every such claim must carry a checked citation:
the citation check drops it instead (docs/evaluation.md). This module tells the two apart, in the languages users
write in, from the sentence's opening words, its possessives and its reporting phrases.
"""

from __future__ import annotations

import re

# Nouns that name the library or one of its documents or bodies, singular and plural, as a sentence's subject.
SOURCE_NOUNS = (
    r"library|passages?|documents?|reports?|conventions?|declarations?|texts?|sources?|instruments?|protocols?"
    r"|regulations|charters?|committee|secretariat|articles?"
    r"|bibliothèque|rapports?|déclarations?|textes?|protocoles?|règlement|comité|secrétariat"
    r"|biblioteca|pasajes?|documentos?|informes?|convenci(?:ón|ones)|convenio|declaraci(?:ón|ones)|textos?|fuentes?|artículos?"
    r"|protocolo|reglamento|secretaría"
    r"|bibliothek|dokumente?|berichte?|konvention(?:en)?|übereinkommens?|erklärung(?:en)?|quellen?|protokoll|artikel"
    r"|ausführungsbestimmungen|ausschuss|komitee|sekretariat"
)
# Vietnamese has no articles: its source nouns count without one.
VIETNAMESE_SOURCE_NOUNS = r"thư\s+viện|tài\s+liệu|báo\s+cáo|công\s+ước|tuyên\s+bố|văn\s+bản"
# Words that make a following source noun a particular source ("the Convention", "both conventions", "die Konvention").
DETERMINERS = (
    r"the|this|these|that|those|both|each|its|their|la|le|les|l|cette|ce|ces|cet|chaque|el|los|las|este|esta|estos|estas"
    r"|ambas|ambos|cada|su|sus|die|der|das|des|dem|den|dieser|diese|dieses|beide|beiden|jede|jeder"
)
OPENING_WORDS = 6  # a source named this early is the sentence's subject ("However, the 1970 Convention states…")
OPENING_SOURCE = re.compile(
    rf"(?<!\w)(?:{DETERMINERS})(?:['’]|\s+)(?:[\w-]+\s+){{0,4}}?(?:\w+-)?(?:{SOURCE_NOUNS})(?!\w)"  # "die UNESCO-Konvention"
    rf"|(?<!\w)(?:{VIETNAMESE_SOURCE_NOUNS}|(?:article|artículo|artikel|điều)\s+\d+)(?!\w)",
    re.IGNORECASE,
)
# A recommendation, not a report: "The committee should meet yearly", "L'État doit…", "Die Ministerien sollten…".
RECOMMENDS = re.compile(
    r"(?<!\w)(?:should|must|ought|could|would|shall\s+consider|devrai(?:t|ent)|doi(?:t|vent)|pourrai(?:t|ent)"
    r"|deber(?:ía|ían)|debe|deben|podría|podrían|sollte|sollten|muss|müssen|könnte|könnten|nên|cần)(?!\w)",
    re.IGNORECASE,
)
# "the library's recommendations", "the Convention's emphasis on…", "… (Article 10) soulignent…"
SOURCE_POSSESSIVE = re.compile(
    rf"(?<!\w)(?:{SOURCE_NOUNS})['’]s(?!\w)|\((?:article|artículo|artikel|art\.|điều)\s*\d+",
    re.IGNORECASE,
)
# "According to the report…", "Selon la Déclaration…", "Laut dem Bericht…", "dem Bericht zufolge": a reporting phrase
# counts with a source after it ("selon les besoins des artistes" reports nothing); an impersonal one always does.
ACCORDING_TO = (
    r"according\s+to|as\s+(?:stated|noted|mentioned|set\s+out|recommended)\s+in|selon|d['’]après|conformément\s+à"
    r"|según|de\s+acuerdo\s+con|conforme\s+a|laut|gemäß|nach|theo"
)
REPORTED = re.compile(
    rf"(?<!\w)(?:{ACCORDING_TO})\s+(?:[\w'’-]+\s+){{0,3}}?(?:\w+-)?(?:{SOURCE_NOUNS}|{VIETNAMESE_SOURCE_NOUNS}|unesco|asef)(?!\w)"
    rf"|(?<!\w)(?:{SOURCE_NOUNS})\s+zufolge(?!\w)"
    r"|(?<!\w)(?:it\s+is\s+(?:stated|noted|mentioned)|il\s+est\s+(?:dit|indiqué|mentionné|précisé|stipulé)"
    r"|se\s+(?:menciona|indica|establece|señala|dice|afirma)\s+que|es\s+wird\s+(?:erwähnt|betont|festgestellt|empfohlen))(?!\w)",
    re.IGNORECASE,
)
# A pronoun standing for a source, then a reporting verb: "It states…", "Elle stipule…", "Sie empfiehlt…". Singular
# only: "They recognize…" more often stands for the parties a brief is about.
PRONOUN_REPORTS = re.compile(
    r"^(?:it|elle|il|sie|es|ella|él)\s+(?:also\s+|aussi\s+|auch\s+|también\s+)?"
    r"(?:states|says|notes|recommends|requires|stresses|emphasi[sz]es|acknowledges|recogni[sz]es|calls\s+for|provides"
    r"|stipule|dit|recommande|exige|souligne|reconnaît|prévoit|précise|affirme|indique"
    r"|empfiehlt|fordert|betont|verlangt|erkennt|besagt|sieht\s+vor"
    r"|establece|recomienda|exige|subraya|reconoce|señala|afirma|dice|prevé|indica)(?!\w)",
    re.IGNORECASE,
)
LEAD = re.compile(r"^\s*(?:[-*•+]\s+|\d+[.)]\s+)?(?:\*\*[^*]+\*\*\s*:?|__[^_]+__\s*:?|[^:.!?]{1,60}:\s)?\s*")


def attributes_to_sources(claim: str) -> bool:
    """Whether ``claim`` (a sentence without citation markers) says what the library or one of its documents says.

    A list item's bold label ("**Market access**: …") is not its subject; a lead-in ending in a colon introduces
    items and asserts nothing itself."""
    text = claim.strip()
    if not text or text.endswith(":"):
        return False
    body = LEAD.sub("", text, count=1) or text
    if REPORTED.search(body) or PRONOUN_REPORTS.search(body):
        return True
    opening = " ".join(body.split()[:OPENING_WORDS])
    subject = OPENING_SOURCE.search(opening)
    if subject is not None:
        # "The committee should meet yearly", "We should follow the Convention…" recommend; "Both conventions
        # mention that States must…" reports
        around = body[:subject.start()] + " " + " ".join(body[subject.end():].split()[:3])
        return not RECOMMENDS.search(around)
    possessive = SOURCE_POSSESSIVE.search(body)
    return possessive is not None and not RECOMMENDS.search(body[:possessive.start()])
