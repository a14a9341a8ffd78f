"""How a request is turned into retrieval queries: framing removed, facets split."""

from __future__ import annotations

from assistant.query_plan import request_facets, strip_framing


def test_framing_is_removed_and_the_topic_kept():
    assert strip_framing("Brief me before a meeting with UNESCO on heritage") == "UNESCO on heritage"
    assert strip_framing("Draft a joint recommendation on Artist mobility") == "Artist mobility"


def test_a_multi_facet_request_is_split_into_its_parts():
    facets = request_facets("Brief me before a meeting with Vietnamese counterparts on cultural cooperation: "
                            "their stated principles and what they want culture to achieve.")
    assert facets == ["Vietnamese counterparts on cultural cooperation", "their stated principles",
                      "what they want culture to achieve"]


def test_facets_in_other_languages_and_lists():
    facets = request_facets("Préparez une note : que peut demander un État au titre de la Convention de 1970, "
                            "par quelle voie passe une demande de restitution, et qui supporte les frais ?")
    assert facets[-2:] == ["par quelle voie passe une demande de restitution", "qui supporte les frais"]
    assert request_facets("¿Qué dicen sobre la lengua materna, sobre los pueblos indígenas y sobre las mujeres?") == [
        "Qué dicen sobre la lengua materna", "sobre los pueblos indígenas", "sobre las mujeres"]


def test_a_one_facet_request_or_a_quotation_is_not_split():
    assert request_facets("What is intangible cultural heritage?") == []
    assert request_facets("How often must a Party to the 2005 Convention report to UNESCO?") == []
    facets = request_facets("What does 'internal warmth, external harmony' mean in Vietnam's diplomacy, "
                            "and what does it ask of culture?")
    assert facets[0] == "What does 'internal warmth, external harmony' mean in Vietnam's diplomacy"
