"""Which counterparts a request names, from the library's metadata."""

from __future__ import annotations

from assistant.counterparts import named_documents
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


def test_organisations_by_acronym_and_regions_by_name():
    assert named_documents("What are UNESCO's priorities on culture and development?", LIBRARY) == {"unesco"}
    assert named_documents("Brief me on ASEF before the lab", LIBRARY) == {"asef"}
    assert named_documents("cooperation between Asia and Europe", LIBRARY) == {"asef"}


def test_generic_or_unrelated_words_name_nobody():
    assert named_documents("Brief me on global cultural diplomacy", LIBRARY) == set()
    assert named_documents("Brief me on Namibia's heritage policy", LIBRARY) == set()
    assert named_documents("the asefetida trade", LIBRARY) == set()  # an acronym matches whole words only
