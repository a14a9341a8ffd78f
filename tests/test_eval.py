"""The evaluation harness: metric unit tests on hand-made cases, and one real run on the dev set."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import DEV_SET, KNOWLEDGE, REPO, copy_index

from eval.metrics import (
    Evidence,
    Question,
    SupportJudge,
    citation_precision,
    citation_recall,
    contains_gold,
    gold_covered,
    gold_ranks,
    is_statement,
    must_mention_hits,
    quotes_overlap,
    recall_at,
    reciprocal_rank,
)
from eval.scoring import FRACTION_METRICS, SystemOutput, aggregate, score_question

POLICYLAB = REPO / ".venv" / "bin" / "policylab"
GOLD = ("Ensuring continuity in cultural projects despite high political turnover by embedding "
        "cultural diplomacy within long-term strategic frameworks.")


# --- retrieval hits -----------------------------------------------------------------------
def test_hit_by_containment_ignores_whitespace_case_and_markdown():
    passage = "Intro.\n- ENSURING continuity in cultural   projects despite **high political turnover** by embedding\n" \
              "cultural diplomacy within long-term strategic frameworks. Next point."
    assert contains_gold(passage, GOLD)


def test_hit_by_overlap_when_a_chunk_edge_cuts_the_quote():
    passage = "Something else. Ensuring continuity in cultural projects despite high political turnover by embedding cultural"
    assert contains_gold(passage, GOLD)  # 14 of the quote's 19 words in one run ≥ 0.6


def test_miss():
    assert not contains_gold("Building resilient partnerships that can withstand changes in government.", GOLD)
    assert not contains_gold("Ensuring continuity in cultural projects.", GOLD)  # 5 of 19 words


def test_ranks_recall_and_mrr():
    gold = [{"source": "a.txt", "quote": "alpha beta gamma"}, {"source": "b.txt", "quote": "delta epsilon"}]
    passages = [("b.txt", "alpha beta gamma"), ("a.txt", "x alpha  beta gamma y"), ("b.txt", "delta epsilon zeta")]
    ranks = gold_ranks(passages, gold)
    assert ranks == [2, 3]  # the source must match too
    assert recall_at(ranks, 1) == 0 and recall_at(ranks, 2) == 0.5 and recall_at(ranks, 3) == 1
    assert reciprocal_rank(ranks) == 0.5


# --- citations (ALCE-style), with the lexical half of the support test only ----------------
FUND = "The World Heritage Fund shall consist of compulsory and voluntary contributions made by the States Parties."
PRAGUE = "Between 10-13 June 2024, 18 participants gathered in Prague, Czech Republic."


def test_citation_recall_and_precision_of_a_crafted_answer():
    answer = ("The World Heritage Fund consists of compulsory and voluntary contributions from States Parties [1]. "
              "The lab gathered 18 participants in Prague [1]. "
              "The lab gathered 18 participants in Prague [1][2]. "
              "This sentence makes a claim without any citation at all.")
    statements = SupportJudge(None).answer(answer, {1: FUND, 2: PRAGUE})
    assert [s.supported for s in statements] == [True, False, True, False]
    # [1] on the third statement is irrelevant: [2] alone supports it
    assert [s.precise for s in statements] == [[True], [False], [False, True], []]
    assert citation_recall(statements) == 0.5
    assert citation_precision(statements) == 0.5


def test_a_citation_needed_for_joint_support_is_precise():
    evidence = {1: "The Fund receives compulsory contributions.", 2: "Voluntary donations from private bodies also reach it."}
    claim = "The Fund receives compulsory contributions and voluntary donations from private bodies and national governments [1][2]."
    [statement] = SupportJudge(None).answer(claim, evidence)
    assert statement.supported and statement.precise == [True, True]


def test_a_changed_number_is_not_supported_even_spelled_out():
    judge = SupportJudge(None)
    quote = "Parties shall provide appropriate information in their reports to Unesco every four years."
    assert judge.supported("Parties provide information in their reports to Unesco every four years.", [quote])
    assert not judge.supported("Parties provide information in their reports to Unesco every five years.", [quote])
    assert not judge.supported("In 2024, 25 participants gathered in Prague, Czech Republic.", [PRAGUE])
    # a name the cited passage never mentions is not supported ("Berlin"); one the passage holds beyond the quote is
    assert not judge.supported("In 2024, 18 participants gathered in Berlin.", [PRAGUE])
    lab_quote = "18 participants from the independent arts sector and the government sector across Asia and Europe gathered"
    assert not judge.supported("18 participants gathered in Prague.", [lab_quote])
    assert judge.supported("18 participants gathered in Prague.", [lab_quote], [], [PRAGUE])
    # the cited document's own year (its identity, as ALCE passages carry their title) need not be in the quote
    claim = "The 2005 Convention asks for reports to Unesco every four years."
    assert not judge.supported(claim, [quote])
    assert judge.supported(claim, [quote], ["Convention on the Diversity of Cultural Expressions 2005 Article 9"])
    assert not judge.supported(claim, [quote], ["Convention for the Safeguarding of the Intangible Cultural Heritage 2003"])


def test_a_bare_number_is_supported_by_nothing():
    # the judge follows the product's verifier: e5 put "3" close to "Article 3 of the Convention"
    from assistant.embeddings import E5Embeddings

    judge = SupportJudge(E5Embeddings())
    assert not judge.supported("3", ["Article 3 of the Convention"])
    assert not judge.supported("2.", ["Row 2 (Left to right):", "Parties report every four years."])
    assert judge.supported("Article 3 concerns the Convention.", ["Article 3 of the Convention"])


def test_the_judge_reads_a_first_word_the_request_names_as_a_name():
    # as the product's verifier does (citations.name_keys): "Vietnam has…" in a brief on Vietnam's minister
    from assistant.embeddings import E5Embeddings

    opening = ("The General Conference of the United Nations Educational, Scientific and Cultural Organization "
               "hereinafter referred to as UNESCO, meeting in Paris, from 29 September to 17 October 2003, at its 32nd session,")
    answer = "Vietnam has been meeting in Paris since 29 September 2003 [1]."
    judge = SupportJudge(E5Embeddings())
    assert judge.answer(answer, {1: opening})[0].supported
    briefed = judge.answer(answer, {1: opening}, request="Brief me before I meet Vietnam's deputy minister of culture.")
    assert not briefed[0].supported


def test_headings_and_labels_are_not_statements():
    answer = "*Extractive answer: quoted.*\n\n## Context\n- The lab gathered 18 participants in Prague [1]."
    statements = SupportJudge(None).answer(answer, {1: PRAGUE})
    assert [s.claim for s in statements] == ["The lab gathered 18 participants in Prague."]


def test_gold_coverage_by_quote_overlap_or_cited_chunk():
    gold = [{"source": "asef.txt", "quote": GOLD}]
    chunk = f"Intro sentence. {GOLD} Another sentence."
    assert gold_covered(gold, [Evidence("asef.txt", chunk, quote="Intro sentence.")]) == [True]  # chunk holds it
    assert gold_covered(gold, [Evidence("asef.txt", "unrelated chunk", quote=GOLD[:90])]) == [True]  # quote overlaps
    assert gold_covered(gold, [Evidence("other.txt", chunk, quote=GOLD)]) == [False]  # wrong document
    assert quotes_overlap("high political turnover by embedding cultural diplomacy", GOLD)
    assert not quotes_overlap("political turnover", "Building resilient partnerships")


def test_must_mention_is_case_and_space_insensitive():
    assert must_mention_hits("It meets EVERY  four years.", ["every four years", "point of contact"]) == [True, False]


def test_abstention_metrics_and_omitted_metrics():
    questions = [
        Question("q1", "ask", "en", "In Prague?", True, [{"source": "a.txt", "quote": PRAGUE}], ["Prague"]),
        Question("q2", "ask", "en", "Naples G7?", False, [], []),
        Question("q3", "ask", "en", "Fund?", True, [{"source": "b.txt", "quote": FUND}], []),
    ]
    outputs = [
        SystemOutput(ranking=[("a.txt", PRAGUE)], answer="18 participants gathered in Prague [1].",
                     evidence={1: Evidence("a.txt", PRAGUE, PRAGUE)}, timings={"sources_s": 0.1, "total_s": 1.0}),
        SystemOutput(ranking=[], answer="Not in the library.", abstained=True, timings={"total_s": 0.2}),
        SystemOutput(ranking=[("a.txt", PRAGUE)], answer="Not in the library.", abstained=True, timings={"total_s": 0.3}),
    ]
    judge = SupportJudge(None)
    metrics = aggregate(questions, [score_question(q, o, judge) for q, o in zip(questions, outputs)])
    assert metrics["retrieval_recall@1"] == 0.5 and metrics["mrr"] == 0.5
    assert metrics["abstention_accuracy"] == 1.0 and metrics["false_abstention_rate"] == 0.5
    assert metrics["citation_recall"] == metrics["citation_precision"] == 1.0
    assert metrics["gold_coverage"] == 0.5 and metrics["must_mention"] == 1.0 and metrics["language_accuracy"] == 1.0
    assert metrics["latency_total_s_p50"] == 0.3
    assert "gold_in_prompt" not in metrics  # no model read a prompt
    outputs[0].extra["gold_in_prompt"] = [True]
    outputs[2].extra["gold_in_prompt"] = [False]
    read = aggregate(questions, [score_question(q, o, judge) for q, o in zip(questions, outputs)])
    assert read["gold_in_prompt"] == 0.5
    retrieval_only = aggregate(questions, [score_question(q, SystemOutput(ranking=o.ranking), judge)
                                           for q, o in zip(questions, outputs)])
    assert "citation_precision" not in retrieval_only and "retrieval_recall@5" in retrieval_only


def test_naive_fallback_and_judge_parsing():
    from eval.baselines.naive import ABSTAINS, first_sentences
    from eval.judge import parse_rating

    assert first_sentences("## Article 1\nThe first one. The second one!\nThe third.") == ["The first one.", "The second one!"]
    assert first_sentences("A line without a stop\nNext sentence here.") == ["A line without a stop", "Next sentence here."]
    assert ABSTAINS.search("I don't know the answer based on the context.")
    assert ABSTAINS.search("Le contexte ne contient pas cette information.")
    assert not ABSTAINS.search("The Fund is financed by contributions [1].")
    assert parse_rating('Sure: {"faithfulness": 4, "helpfulness": 2}') == {"judge_faithfulness": 4, "judge_helpfulness": 2}
    assert parse_rating("faithfulness: 5, helpfulness 3") == {"judge_faithfulness": 5, "judge_helpfulness": 3}
    assert parse_rating("no idea") is None


def test_the_labelled_support_pairs_quote_the_corpus_exactly():
    labels = [json.loads(line) for line in (REPO / "eval" / "labels" / "citation_support.jsonl").read_text().splitlines()]
    assert len(labels) >= 40
    assert {label["kind"] for label in labels} >= {"true", "wrong_passage", "changed_number", "unrelated",
                                                    "paraphrase_fr", "paraphrase_de"}
    for label in labels:
        assert label["quote"] in (KNOWLEDGE / label["source"]).read_text(encoding="utf-8"), label["id"]


# --- one real run -----------------------------------------------------------------------
@pytest.mark.slow
def test_policylab_eval_on_the_dev_set(default_index, tmp_path):
    out = tmp_path / "report"
    copy_index(default_index, out / "index")  # the harness reuses it: the corpus is unchanged
    env = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    env.pop("POLICYLAB_JUDGE_BASE_URL", None)
    result = subprocess.run(
        [str(POLICYLAB), "eval", "--questions", str(DEV_SET), "--corpus", str(KNOWLEDGE), "--compare", "baseline",
         "--out", str(out), "--backend", "extractive"],
        check=False, env=env, capture_output=True, text=True, timeout=1800, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 indexed, 9 unchanged" in result.stderr

    report = json.loads((out / "report.json").read_text())
    assert set(report["systems"]) == {"policylab", "baseline-naive", "bm25"}
    assert len(report["questions"]) == sum(1 for line in DEV_SET.read_text().splitlines() if line.strip())
    policylab = report["systems"]["policylab"]
    for metric in FRACTION_METRICS:
        assert 0.0 <= policylab[metric] <= 1.0, metric
    assert set(FRACTION_METRICS) <= set(report["systems"]["baseline-naive"])
    assert "citation_precision" not in report["systems"]["bm25"] and "retrieval_recall@5" in report["systems"]["bm25"]
    # The CI gate: recall@5 >= 0.9 and citation precision >= 0.9 (measured 0.923 and 1.0).
    assert policylab["retrieval_recall@5"] >= 0.9
    assert policylab["citation_precision"] >= 0.9
    for question in report["questions"]:
        record = question["systems"]["policylab"]
        assert {"ranks", "answer", "abstained", "timings", "verification", "citation_status"} <= set(record)
        assert set(record["citation_status"].values()) <= {"kept", "retargeted", "added"}
        assert len(record["citation_status"]) == len(record["citations"])
    markdown = (out / "report.md").read_text()
    assert "| retrieval recall@5 |" in markdown and "policylab ÷ naive" in markdown
    for plot in ("metrics.png", "score_distributions.png", "latency.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_questions_and_labels_are_not_statements():
    assert is_statement("Parties report to UNESCO every four years [2].")
    assert not is_statement("- **What challenges do you face in building a professional diplomacy?**")
    assert not is_statement("How can mobility support reach artists from the Global South? [3]")
    assert not is_statement("## Suggested talking points and questions")


def test_the_scripted_chat_user_resends_a_request_whose_connection_closed_before_any_reply():
    """A server that drops every other connection without replying (as uvicorn drops a kept-alive connection idle for
    5 s): the chat client's transport sends the request again and gets the reply; a plain client fails."""
    import asyncio

    import httpx

    from eval.chat_client import BrowserLikeTransport

    async def scenario() -> tuple[int, str, int]:
        connections = 0
        bodies: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            body = await reader.readexactly(length)
            if connections % 2 == 1:  # the first of each pair: closed, no reply
                writer.close()
                return
            bodies.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            async with httpx.AsyncClient(base_url=url, transport=BrowserLikeTransport()) as client:
                resent = await client.post("/project/file", files={"file": ("note.txt", b"a contribution", "text/plain")})
            async with httpx.AsyncClient(base_url=url) as plain:
                with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                    await plain.post("/project/file", content=b"x")
        return resent.status_code, bodies[0].decode(errors="replace"), connections

    status, body, connections = asyncio.run(scenario())
    assert status == 200
    assert "a contribution" in body  # the multipart body went out whole the second time
    assert connections == 3


def test_checking_recorded_drafts_names_a_missing_or_malformed_file(tmp_path, capsys):
    from eval.drafts import main

    assert main(["check", "--drafts", str(tmp_path / "none.jsonl")]) == 2
    assert "No drafts file at" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q-1", "question": "Q?", "reply": "R.", "passages": []}\nnot json\n', encoding="utf-8")
    assert main(["check", "--drafts", str(bad)]) == 2
    assert "line 2: not a JSON record" in capsys.readouterr().err
