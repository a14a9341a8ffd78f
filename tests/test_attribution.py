"""Telling a claim about what the sources say from the model's own suggestion, in the languages users write in."""

from __future__ import annotations

import pytest

from assistant.attribution import attributes_to_sources


@pytest.mark.parametrize("sentence", [
    "The Convention acknowledges that there may be sensitivities surrounding sites in disputed territories.",
    "However, the convention has been widely accepted and implemented by many countries.",
    "Both conventions recognize the need for international assistance in emergencies.",
    "This shared objective is reflected in the Convention's emphasis on international cooperation.",
    "The library's recommendations on tracking change over time address several past challenges.",
    "According to the report, most residencies are funded by ministries.",
    "Article 4 requires States to respect cultural property.",
    "Les principes de l'UNESCO pour la diversité culturelle (Article 10) soulignent la nécessité d'accroître les capacités.",
    "- **Market access**: The 2005 Convention encourages wider access to markets.",
    "La Convention de 1970 est une convention internationale qui protège les patrimoines culturels.",
    "Elle stipule que tout État partie peut demander une restitution.",
    "Selon la Déclaration, la diversité culturelle est un patrimoine commun.",
    "Die Haager Konvention fordert Länder auf, Kulturgut zurückzugeben.",
    "Sie empfiehlt, gemeinsame Inventare zu erstellen.",
    "Laut dem Bericht fehlen Mittel für Residenzen.",
    "Dem Bericht zufolge fehlen Mittel für Residenzen.",
    "Nach den Ausführungsbestimmungen zur Haager Konvention muss der Ausweis ein Lichtbild enthalten.",
    "La convención establece principios y prioridades clave para su funcionamiento.",
    "Ambas convenciones también mencionan que los Estados miembros deben actualizar sus inventarios.",
    "También se menciona que los Estados deben actualizar los inventarios.",
    "Công ước 2003 quy định rằng các quốc gia phải lập danh mục di sản.",
    "Theo báo cáo, các nghệ sĩ gặp khó khăn về thị thực.",
])
def test_a_sentence_that_says_what_a_source_says(sentence):
    assert attributes_to_sources(sentence)


@pytest.mark.parametrize("sentence", [
    "Ministries should fund artist residencies every year.",
    "The committee should meet once a year to review the programme.",
    "A joint steering committee should be set up by both ministries.",
    "We should follow the Convention's guidance on inventories.",
    "The Hague Convention sets out several principles, including:",  # a lead-in to cited items
    "- **Market access**: Facilitate wider access to global markets for artists.",
    "This common ground is essential for keeping heritage accessible to future generations.",
    "They also recognize the role of technology in communication.",  # the parties of a brief, not a source
    "L'État doit promouvoir l'internationalisation des politiques pour atteindre les objectifs de la Convention.",
    "Die Ministerien sollten Residenzen gemeinsam finanzieren.",
    "Los ministerios deberían financiar residencias artísticas.",
    "Les ministères adaptent le financement selon les besoins des artistes.",  # "selon" without a source
    "Nach zwei Monaten ernennt der Generaldirektor einen Vorsitzenden.",
    "Funding is allocated according to need and merit.",
    "Ministries should apply preferential treatment (Article 16) to artists from developing countries.",
    "",
])
def test_a_sentence_that_does_not(sentence):
    assert not attributes_to_sources(sentence)
