"""How a request is turned into retrieval queries: framing removed, facets split."""

from __future__ import annotations

from assistant.query_plan import request_facets, strip_framing


def test_framing_is_removed_and_the_topic_kept():
    assert strip_framing("Brief me before a meeting with UNESCO on heritage") == "UNESCO on heritage"
    assert strip_framing("Draft a joint recommendation on Artist mobility") == "Artist mobility"


def test_a_multi_facet_request_is_split_into_its_parts():
    facets = request_facets("Brief me before a meeting with Vietnamese counterparts on cultural cooperation: "
                            "their stated principles and what they want culture to achieve.")
    # the parts listed after the colon first: what comes before it is the occasion
    assert facets == ["their stated principles", "what they want culture to achieve",
                      "Vietnamese counterparts on cultural cooperation"]


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


def test_framing_is_removed_in_the_languages_users_write_in():
    assert strip_framing("Rédigez une recommandation conjointe sur la mobilité des artistes") == "sur la mobilité des artistes"
    assert strip_framing("Prepárame un informe sobre la diversidad cultural") == "sobre la diversidad cultural"
    assert strip_framing("Erstellen Sie einen Bericht über das Welterbe, gestützt auf die Dokumente der Bibliothek") == (
        "über das Welterbe")
    assert strip_framing("Hãy soạn một bản tóm tắt về di sản văn hóa phi vật thể") == "về di sản văn hóa phi vật thể"


def test_listed_items_are_facets_and_writing_instructions_are_not():
    facets = request_facets("Draft a joint recommendation on making online cultural exchange more inclusive: "
                            "multilingual content, access for under-resourced regions, and partnerships around new "
                            "technologies. Cite the principles, so that we can show the ministry we listened.")
    assert facets == ["multilingual content", "access for under-resourced regions",
                      "partnerships around new technologies", "making online cultural exchange more inclusive"]
    # an instruction whose object names something specific is searched for that object
    assert "legal commitments of the 1954 Convention" in request_facets(
        "Draft a note on heritage at risk: combine the legal commitments of the 1954 Convention, and the training of "
        "armed forces.")


def test_a_part_that_only_names_the_sources_is_not_a_facet():
    # "What do the UNESCO texts say" asks for no evidence of its own: searched, it took a place from the topic's
    assert request_facets("Can a government cite cultural diversity to restrict human rights? What do the UNESCO texts say?") == []
    assert request_facets("Draft a recommendation on education programmes, especially for young people, grounded in "
                          "the UNESCO conventions.") == ["education programmes", "especially for young people"]
    for part in ("According to the ASEF report", "Que disent les textes de l'UNESCO ?", "¿Qué dicen los documentos?",
                 "Was sagt die Konvention von 2005?", "In the WVR article"):
        assert request_facets(f"What is cultural diversity? {part}") == [], part
    # a part that names sources and a topic is one
    assert request_facets("What is cultural diversity? What do the UNESCO texts say about heritage?") == [
        "What is cultural diversity", "What do the UNESCO texts say about heritage"]


def test_a_part_that_only_says_what_to_write_is_not_a_facet():
    # "It should cover", "Debe incluir", "Merci de proposer un texte structuré qui traite" lead into the list of
    # what is asked; searched, each took a place in the interleave from a listed part
    facets = request_facets("As alumni, we're drafting a joint recommendation to our funders. It should cover: an alumni "
                            "network, peer mentoring, and training programmes for the cultural industries.")
    assert facets[:3] == ["alumni network", "peer mentoring", "training programmes for the cultural industries"]
    assert not any("cover" in facet for facet in facets), facets
    for lead_in in ("Debe incluir", "Merci de proposer un texte structuré qui traite", "We need these sections",
                    "Hãy soạn giúp tôi một bản tóm tắt trước cuộc họp gồm"):
        facets = request_facets(f"{lead_in}: la diversité linguistique en ligne, la fracture numérique entre pays.")
        assert facets == ["diversité linguistique en ligne", "fracture numérique entre pays"], (lead_in, facets)


def test_a_long_request_keeps_its_listed_parts_and_puts_them_first():
    # with six facets at most, the context sentences took the places and the last asked-for parts were cut;
    # searched first, they took the first places in the interleaved ranking
    request = ("Our lab working group (museum staff, a heritage NGO and two foreign-ministry officials) wants to issue "
               "a joint recommendation to ministries on protecting heritage from armed conflict. Please draft it with "
               "three operative paragraphs: what states should do in peacetime to prepare, what should change in the "
               "training of armed forces, and what states owe to heritage located on other states' territory.")
    facets = request_facets(request)
    assert facets[:3] == ["what states should do in peacetime to prepare",
                          "what should change in the training of armed forces",
                          "what states owe to heritage located on other states' territory"], facets
    # the context adds its fullest statement only, not each detail of who writes
    assert facets[3:] == ["wants to issue a joint recommendation to ministries on protecting heritage from armed conflict"]


def test_statements_before_the_first_question_are_searched_after_it():
    # the occasion ("Nous préparons une réunion…") took the interleave's second place from the first thing asked
    facets = request_facets("Nous préparons une réunion avec la délégation vietnamienne la semaine prochaine. Quels sont "
                            "les principes de la diplomatie culturelle du Vietnam et quel rôle joue le patrimoine ?")
    assert facets == ["Quels sont les principes de la diplomatie culturelle du Vietnam", "quel rôle joue le patrimoine",
                      "Nous préparons une réunion avec la délégation vietnamienne la semaine prochaine"]
    # a need asks too; questions only, the order is the request's own
    facets = request_facets("I am preparing for a meeting with the ASEF team. I want to know which challenges the lab "
                            "participants named and what they recommended for artist mobility.")
    assert facets[-1].startswith("I am preparing"), facets
    assert request_facets("What is cultural diversity? What do the UNESCO texts say about heritage?")[0] == (
        "What is cultural diversity")


def test_a_pronoun_and_verb_before_a_comma_is_no_facet_of_its_own():
    facets = request_facets("Wir überlegen, gemeinsam mit Partnern aus Asien das immaterielle Kulturerbe zu schützen. "
                            "Welche Pflichten haben die Vertragsstaaten?")
    assert "Wir überlegen" not in facets
    assert "Wir überlegen gemeinsam mit Partnern aus Asien das immaterielle Kulturerbe zu schützen" in facets


def test_the_addressee_of_a_draft_is_framing():
    # "to our culture and trade ministries" left "and trade ministries on how…" as the topic
    assert strip_framing("Draft a joint recommendation to our culture and trade ministries on how cultural goods "
                         "should be treated in trade agreements.") == "how cultural goods should be treated in trade agreements"
    assert strip_framing("Prepare a briefing for our delegation on heritage and development.") == "heritage and development"


def test_statements_before_a_later_instruction_are_searched_after_it():
    # who writes and when took the first places of the interleave from the three things asked for
    facets = request_facets("I'm the programme officer of our ministry, and on Monday I meet the lab's organisers to "
                            "discuss funding. Please prepare talking points that answer (1) what the lab recommended "
                            "about intermediaries, and (2) what it proposed for alumni networks.")
    assert facets[:2] == ["what the lab recommended about intermediaries", "what it proposed for alumni networks"], facets
    assert not any("talking points" in facet for facet in facets)
    assert facets[2:] == ["Monday I meet the lab's organisers to discuss funding"]  # the context's fullest statement
