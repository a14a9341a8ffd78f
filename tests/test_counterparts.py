"""Which counterparts a request names, from the library's metadata."""

from __future__ import annotations

from assistant.counterparts import cited_documents, named_documents, titled_documents
from assistant.types import DocumentInfo

LIBRARY = [
    DocumentInfo("vn", "vn.txt", "Culture in Vietnam's diplomacy", publisher="World and Vietnam Report (WVR)", country="Vietnam"),
    DocumentInfo("asef", "asef.txt", "Lab report", publisher="Asia-Europe Foundation (ASEF)", region="Asia-Europe"),
    DocumentInfo("unesco", "c2005.md", "2005 Convention", publisher="UNESCO General Conference", region="global"),
    DocumentInfo("de", "de.pdf", "Strategie", publisher="Auswärtiges Amt", country="Germany"),
]


def test_demonyms_and_other_languages_name_the_country():
    assert named_documents("Brief me before a meeting with Vietnamese counterparts", LIBRARY) == {"vn"}
    assert named_documents("Préparez une note avant de rencontrer nos homologues vietnamiens", LIBRARY) == {"vn"}
    assert named_documents("Chuẩn bị cuộc gặp với đối tác Vietnam", LIBRARY) == {"vn"}
    assert named_documents("Briefing on German cultural policy", LIBRARY) == {"de"}
    # Vietnamese writes the country's name in two words
    assert named_documents("Tôi sắp họp với Bộ Ngoại giao Việt Nam", LIBRARY) == {"vn"}
    assert named_documents("the a sef trade", LIBRARY) == set()  # an acronym is not joined from two words


def test_organisations_by_acronym_and_regions_by_name():
    assert named_documents("What are UNESCO's priorities on culture and development?", LIBRARY) == {"unesco"}
    assert named_documents("Brief me on ASEF before the lab", LIBRARY) == {"asef"}
    assert named_documents("cooperation between Asia and Europe", LIBRARY) == {"asef"}


def test_generic_or_unrelated_words_name_nobody():
    assert named_documents("Brief me on global cultural diplomacy", LIBRARY) == set()
    assert named_documents("Brief me on Namibia's heritage policy", LIBRARY) == set()
    assert named_documents("the asefetida trade", LIBRARY) == set()  # an acronym matches whole words only


INSTRUMENTS = [
    DocumentInfo("c1970", "c1970.md", "Convention on the Means of Prohibiting the Illicit Import of Cultural Property",
                 publisher="UNESCO General Conference", year=1970, doc_type="convention"),
    DocumentInfo("h1954", "h1954.md", "Convention for the Protection of Cultural Property in the Event of Armed Conflict",
                 publisher="Intergovernmental Conference (The Hague, convened by UNESCO)", year=1954, doc_type="convention"),
    DocumentInfo("d2001", "d2001.md", "UNESCO Universal Declaration on Cultural Diversity",
                 publisher="UNESCO General Conference", year=2001, doc_type="declaration"),
    DocumentInfo("asef", "asef.txt", "How Do We Navigate Cultural Diplomacy?", publisher="Asia-Europe Foundation (ASEF)",
                 year=2024, doc_type="lab report"),
]


def test_instruments_cited_by_year_and_type_in_any_language():
    assert cited_documents("What does the 1970 Convention say about export certificates?", INSTRUMENTS) == {"c1970"}
    assert cited_documents("au titre de la Convention de 1970", INSTRUMENTS) == {"c1970"}
    assert cited_documents("Was verlangt die Konvention von 1970?", INSTRUMENTS) == {"c1970"}
    assert cited_documents("la Declaración Universal de 2001", INSTRUMENTS) == {"d2001"}
    assert cited_documents("Tuyên bố năm 2001 của UNESCO", INSTRUMENTS) == {"d2001"}
    assert cited_documents("the ASEF 2024 report and the 1970 Convention", INSTRUMENTS) == {"asef", "c1970"}


def test_a_citation_spelled_out_with_function_words_still_cites():
    # "la Convention de La Haye de 1954": the type is the fifth word before the year, the second content word
    assert cited_documents("La Convention de La Haye de 1954 permet-elle de lever la protection ?", INSTRUMENTS) == {"h1954"}
    assert cited_documents("¿Qué dice la Convención de La Haya de 1954?", INSTRUMENTS) == {"h1954"}
    assert cited_documents("Was verlangt das Haager Abkommen von 1954?", INSTRUMENTS) == {"h1954"}


def test_a_request_without_its_citations_keeps_its_topic():
    from assistant.counterparts import without_citations

    assert without_citations("What does the 1970 Convention say about export certificates?") == (
        "What does say about export certificates?")
    assert without_citations("La Convention de La Haye de 1954 permet-elle de lever la protection ?") == (
        "permet-elle de lever la protection?")
    assert without_citations("I need the Hague 1954 obligations in a nutshell") == "I need obligations in a nutshell"
    # a sentence's first word is not a name; a bare year is no citation; a request that is all citation stays whole
    assert without_citations("Compare the 1970 Convention with the 1972 World Heritage Convention on inventories.") == (
        "Compare with inventories.")
    assert without_citations("In 2024, cultural diplomacy grew in Asia") == "In 2024, cultural diplomacy grew in Asia"
    assert without_citations("Summarise the 1970 Convention") == "Summarise the 1970 Convention"
    # what stands before "of the … Convention" is another body, kept; so is a German noun after "von 1954"
    assert without_citations("How many members does the Intergovernmental Committee of the 2005 Convention have?") == (
        "How many members does the Intergovernmental Committee have?")
    assert without_citations("¿Cuántos Estados forman el Comité Intergubernamental de la Convención de 2005?") == (
        "¿Cuántos Estados forman el Comité Intergubernamental?")
    assert without_citations("Was verlangt das Haager Abkommen von 1954 von Besatzungsmächten?") == (
        "Was verlangt Besatzungsmächten?")


def test_an_instrument_cited_by_a_word_of_its_name_next_to_the_year():
    assert cited_documents("I need the Hague 1954 obligations in a nutshell", INSTRUMENTS) == {"h1954"}


def test_a_bare_year_cites_nothing():
    assert cited_documents("In 2024, cultural diplomacy grew in Asia", INSTRUMENTS) == set()
    assert cited_documents("the results of its 2024 K-culture export strategy", INSTRUMENTS) == set()
    assert cited_documents("the 1999 Convention", INSTRUMENTS) == set()  # no document of that year
    assert cited_documents("What is cultural diversity?", INSTRUMENTS) == set()


def test_a_citation_shared_by_many_documents_identifies_none():
    reports = [DocumentInfo(f"r{i}", f"r{i}.pdf", f"Annual report {i}", publisher="Ministry", year=2005, doc_type="report")
               for i in range(4)]
    assert cited_documents("What does the 2005 report say about touring artists?", reports) == set()
    assert cited_documents("What does the 2005 report say about touring artists?", reports[:3]) == {"r0", "r1", "r2"}


def test_instruments_cited_by_year_that_the_library_does_not_hold():
    from assistant.counterparts import HELD, MENTIONED, MISSING, instrument_citations, instrument_holdings

    library = [DocumentInfo("c1970", "c1970.md", "Convention on illicit traffic", year=1970, doc_type="convention")]
    evidence = "the world commission on culture and development our creative diversity, 1995"
    assert instrument_citations("What does the 1995 UNIDROIT Convention set?") == [("1995", frozenset({"UNIDROIT"}))]
    assert instrument_citations("Que prévoit la Convention UNIDROIT de 1995 ?") == [("1995", frozenset({"UNIDROIT"}))]
    assert instrument_citations("In 1995, what did museums do?") == []  # a bare year cites nothing
    # German capitalises every noun: only acronyms name an instrument, first in a compound
    assert instrument_citations("Was sagt die MONDIACULT-Erklärung von 2022 über Kultur?") == [("2022", frozenset({"MONDIACULT"}))]
    assert instrument_citations("Was regelt die UNIDROIT-Konvention von 1995 über Fristen?") == [("1995", frozenset({"UNIDROIT"}))]
    assert instrument_holdings(instrument_citations("What does the 1995 UNIDROIT Convention set?"), library, evidence) == [MISSING]
    assert instrument_holdings(instrument_citations("What does the 1970 Convention require?"), library, evidence) == [HELD]
    # a cited instrument the library's passages mention by name is not missing, nor one whose year they mention
    assert instrument_holdings(instrument_citations("What did the 2022 MONDIACULT Declaration add?"), library,
                               "the mondiacult 2022 declaration") == [MENTIONED]
    assert instrument_holdings(instrument_citations("What does the 1995 Recommendation say?"), library, evidence) == [MENTIONED]
    both = "Compare the 1970 Convention with the 1995 UNIDROIT Convention."
    assert instrument_holdings(instrument_citations(both), library, evidence) == [HELD, MISSING]


def test_a_cited_source_is_named_as_the_request_words_it():
    from assistant.counterparts import cited_as, dated_names, instrument_citations

    def wording(request: str) -> list[str]:
        return [cited_as(request, *c) for c in instrument_citations(request) + dated_names(request)]

    assert wording("What does the MONDIACULT 2022 declaration say about culture?") == ["MONDIACULT 2022 declaration"]
    assert wording("Que prévoit la Convention de La Haye de 1954 ?") == ["Convention de La Haye de 1954"]
    assert wording("Was sagt die MONDIACULT-Erklärung von 2022?") == ["MONDIACULT-Erklärung von 2022"]
    assert wording("Brief me on the third edition of ASEF LinkUp in 2025.") == ["ASEF LinkUp in 2025"]
    # a citation stops at the sentence's end and at another year
    assert wording("Under the 1972 Convention. Give examples.") == ["1972 Convention"]
    assert wording("the 1972 World Heritage Convention and the 2003 Convention") == ["1972 World Heritage Convention", "2003 Convention"]
    assert wording("the 1972 Convention and the 1995 UNIDROIT Convention") == ["1972 Convention", "1995 UNIDROIT Convention"]


def test_names_dated_by_a_year_that_the_library_does_not_hold():
    from assistant.counterparts import HELD, MENTIONED, MISSING, dated_name_holdings, dated_names
    from assistant.types import Passage

    asef = DocumentInfo("asef", "asef-linkup-2024.txt", "How Do We Navigate Cultural Diplomacy?",
                        publisher="Asia-Europe Foundation (ASEF)", year=2024, doc_type="report")
    article = DocumentInfo("mag", "mag-2025.txt", "How cultural diplomacy fosters partnerships", year=2025)
    library = [asef, article]
    def passage(doc: DocumentInfo, text: str) -> Passage:
        return Passage(f"{doc.doc_id}-1", doc.doc_id, text, doc.source_file, doc.title, doc.publisher, doc.year,
                       doc.doc_type, "", "", "en", None, 0, "", 0, len(text))

    lab = passage(asef, "The second edition of ASEF LinkUp gathered 18 participants in Prague.")
    assert dated_names("Brief me on the third edition of ASEF LinkUp in 2025: who took part?") == [
        ("2025", frozenset({"ASEF", "LinkUp"}))]
    assert dated_names("the EU's 2016 Joint Communication") == [("2016", frozenset({"EU"}))]
    # a name and its year with the event between them ("held in", "that took place in", "tenue en")
    for request in ("Brief me on the third edition of ASEF LinkUp held in 2025.", "Bilan de la session d'ASEF LinkUp tenue en 2025",
                    "the ASEF LinkUp that took place in 2025"):
        assert dated_names(request) == [("2025", frozenset({"ASEF", "LinkUp"}))], request
    assert dated_names("What did UNESCO adopt in 2005 on diversity?") == []
    assert dated_names("Bilan de la troisième édition d'ASEF LinkUp en 2025") == [("2025", frozenset({"ASEF", "LinkUp"}))]
    # plain words, translated names ("La Haye"), an instrument cited by type, a year after a comma: none
    assert dated_names("In 2024, Vietnam launched a plan") == []
    assert dated_names("la Convention de La Haye de 1954") == []
    assert dated_names("What does the 1995 UNIDROIT Convention set?") == []
    # the 2025 article does not name ASEF LinkUp; the 2024 report does, in its metadata and its passage
    assert dated_name_holdings(dated_names("ASEF LinkUp in 2025"), library, [lab]) == [MISSING]
    assert dated_name_holdings(dated_names("What did the ASEF LinkUp 2024 fellows propose?"), library, [lab]) == [HELD]
    assert dated_name_holdings(dated_names("the 2023 G7 ministers"), library, [lab]) == [MISSING]
    # a passage naming the identifier with the year mentions it, whatever the document's own year
    recap = passage(article, "At its 2023 meeting the G7 agreed on restitution.")
    assert dated_name_holdings(dated_names("the 2023 G7 ministers"), library, [recap]) == [MENTIONED]
    # a short identifier is a whole word: "UN" is not held by "United" or "under"
    un = passage(article, "In 2030 the United Nations will review what was done under the plan.")
    assert dated_name_holdings(dated_names("the UN 2030 Agenda"), library, [un]) == [MISSING]


WORLD_HERITAGE = DocumentInfo("c1972", "c1972.md", "Convention concerning the Protection of the World Cultural and Natural Heritage",
                              publisher="UNESCO General Conference", year=1972, doc_type="convention")
INTANGIBLE = DocumentInfo("c2003", "c2003.md", "Convention for the Safeguarding of the Intangible Cultural Heritage",
                          publisher="UNESCO General Conference", year=2003, doc_type="convention")


def test_instruments_cited_by_name_without_their_year():
    library = INSTRUMENTS + [WORLD_HERITAGE, INTANGIBLE]
    assert titled_documents("Brief me on what the Hague Convention expects of an occupying power", library) == {"h1954"}
    assert titled_documents("What does the World Heritage Convention say about the List in Danger?", library) == {"c1972"}
    assert titled_documents("Can two States apply together under the intangible heritage convention?", library) == {"c2003"}
    assert titled_documents("the Universal Declaration on Cultural Diversity", library) == {"d2001"}


def test_a_name_shared_by_several_instruments_cites_none():
    library = INSTRUMENTS + [WORLD_HERITAGE, INTANGIBLE]
    assert titled_documents("What does the cultural property convention require?", library) == set()  # 1954 and 1970
    assert titled_documents("What does the heritage convention require?", library) == set()  # 1972 and 2003
    assert titled_documents("Which UNESCO conventions deal with heritage?", library) == set()
    assert titled_documents("What does the convention say about the protection of heritage?", library) == set()
    assert titled_documents("Que dit la Convention du patrimoine mondial ?", library) == set()  # English titles only
