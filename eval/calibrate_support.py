"""How well does the offline support test agree with hand labels?

    .venv/bin/python -m eval.calibrate_support [--labels eval/labels/citation_support.jsonl] [--sweep] [--json]

Each label is a (statement, quote, supported) triple made from the real corpus: true supports,
claims paired with the wrong passage, claims whose figure was changed, unrelated claims, claims put
on another name, and French/German paraphrases of English quotes. The evaluation's citation recall
and precision decide "the quote supports the statement" with ``eval.metrics.SupportJudge`` (the
product's ``assistant.citations.SupportScorer``: content-word overlap, e5 similarity, numbers must
match; and the verifier's names rule) in place of ALCE's NLI model; this script reports its accuracy,
precision and recall (for the "supported" class) against the labels, per kind, with the thresholds in
force. Names are looked for in the quote's surroundings in its document (about one passage), as the
verifier reads the whole cited passage. ``--sweep`` also shows the agreement of nearby thresholds
(from the same scores, no re-embedding).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = Path(__file__).resolve().parent / "labels" / "citation_support.jsonl"
KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
PASSAGE_CHARS = 700  # either side of the quote: about one indexed passage (220 tokens), where names are looked for


@dataclass
class Scored:
    label: dict[str, Any]
    overlap: float
    cosine: float
    numbers_ok: bool  # digits (the product's test)
    words_ok: bool  # spelled-out numbers too (the evaluation's addition)
    predicted: bool
    passage: str = ""  # the quote's surroundings in its document, standing for the cited passage


def surrounding_passage(label: dict[str, Any], knowledge: Path = KNOWLEDGE) -> str:
    """The text around ``label``'s quote in its source document (what the verifier reads names in), or "" if the
    document or the quote cannot be found."""
    path = knowledge / label["source"]
    if not path.is_file():
        return ""
    text = " ".join(path.read_text(encoding="utf-8").split())
    at = text.find(" ".join(label["quote"].split()))
    if at < 0:
        return ""
    return text[max(0, at - PASSAGE_CHARS): at + len(label["quote"]) + PASSAGE_CHARS]


def load_labels(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_labels(labels: list[dict[str, Any]], embeddings: Any) -> list[Scored]:
    from eval.metrics import SupportJudge

    judge = SupportJudge(embeddings)
    scored = []
    for label in labels:
        passage = surrounding_passage(label)
        predicted = judge.supported(label["statement"], [label["quote"]], [], [passage])
        span = judge._spans(label["quote"])[0]
        judge.scorer.prepare([span])
        overlap, cosine, numbers_ok = judge.scorer.score(label["statement"], span)
        words_ok = judge._numbers_ok(label["statement"], label["quote"])
        scored.append(Scored(label, overlap, cosine, numbers_ok, words_ok, predicted, passage))
    return scored


def agreement(pairs: list[tuple[bool, bool]]) -> dict[str, float | int | None]:
    """Accuracy, and precision/recall of the "supported" class, for (predicted, gold) pairs."""
    tp = sum(p and g for p, g in pairs)
    fp = sum(p and not g for p, g in pairs)
    fn = sum(g and not p for p, g in pairs)
    correct = sum(p == g for p, g in pairs)
    return {
        "n": len(pairs), "accuracy": round(correct / len(pairs), 3) if pairs else None,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "true_positive": tp, "false_positive": fp, "false_negative": fn,
    }


def thresholds() -> dict[str, float]:
    from assistant import citations

    return {"lexical_support": citations.LEXICAL_SUPPORT, "embedding_support": citations.EMBEDDING_SUPPORT,
            "embedding_with_overlap": citations.EMBEDDING_WITH_OVERLAP,
            "min_overlap_for_embedding": citations.MIN_OVERLAP_FOR_EMBEDDING}


def product_decision(s: Scored) -> bool:
    """The verifier's test: the scorer's thresholds, digits and negations, and its names rule (the label's quote
    standing for the passage)."""
    from assistant.citations import SupportScorer
    from eval.metrics import SupportJudge

    return (SupportScorer.supports(s.overlap, s.cosine, s.numbers_ok)
            and SupportJudge._names_ok(s.label["statement"], s.passage or s.label["quote"]))


def sweep(scored: list[Scored]) -> list[dict[str, float]]:
    """Agreement for a grid of lexical / embedding thresholds (single-span decisions)."""
    current = thresholds()
    rows = []
    for lexical in (0.4, 0.45, 0.5, 0.55, 0.6):
        for embedding in (0.82, 0.84, 0.86, 0.88, 0.9):
            with_overlap = embedding - (current["embedding_support"] - current["embedding_with_overlap"])
            pairs = []
            for s in scored:
                predicted = s.numbers_ok and s.words_ok and (
                    s.overlap >= lexical or s.cosine >= embedding
                    or (s.cosine >= with_overlap and s.overlap >= current["min_overlap_for_embedding"]))
                pairs.append((predicted, bool(s.label["supported"])))
            rows.append({"lexical_support": lexical, "embedding_support": embedding, **agreement(pairs)})
    return rows


def report(scored: list[Scored]) -> dict[str, Any]:
    by_kind: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for s in scored:
        by_kind[s.label["kind"]].append((s.predicted, bool(s.label["supported"])))
    return {
        "thresholds": thresholds(),
        "overall": agreement([(s.predicted, bool(s.label["supported"])) for s in scored]),
        # the product's verifier alone (digits only, no spelled-out numbers)
        "product_test": agreement([(product_decision(s), bool(s.label["supported"])) for s in scored]),
        "by_kind": {kind: agreement(pairs) for kind, pairs in sorted(by_kind.items())},
        "disagreements": [
            {"id": s.label["id"], "kind": s.label["kind"], "statement": s.label["statement"],
             "labelled": s.label["supported"], "predicted": s.predicted, "overlap": round(s.overlap, 3),
             "cosine": round(s.cosine, 3), "numbers_ok": s.numbers_ok and s.words_ok}
            for s in scored if s.predicted != bool(s.label["supported"])
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--sweep", action="store_true", help="Also show the agreement of nearby thresholds.")
    parser.add_argument("--json", action="store_true", help="Print JSON.")
    args = parser.parse_args(argv)

    from assistant.embeddings import make_embeddings
    from assistant.settings import get_settings

    scored = score_labels(load_labels(args.labels), make_embeddings(get_settings()))
    result = report(scored)
    if args.sweep:
        result["sweep"] = sweep(scored)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    overall = result["overall"]
    print(f"Support approximation vs {overall['n']} hand labels ({args.labels}):")
    print(f"  thresholds: {result['thresholds']}")
    print(f"  accuracy {overall['accuracy']}, precision {overall['precision']}, recall {overall['recall']} "
          f"(TP {overall['true_positive']}, FP {overall['false_positive']}, FN {overall['false_negative']})")
    product = result["product_test"]
    print(f"  (the product's verifier test alone, digits only: accuracy {product['accuracy']}, "
          f"precision {product['precision']}, recall {product['recall']})")
    for kind, values in result["by_kind"].items():
        print(f"  {kind:16} n={values['n']:2}  accuracy {values['accuracy']}")
    for row in result["disagreements"]:
        print(f"  disagrees: {row['id']} [{row['kind']}] labelled {row['labelled']}, predicted {row['predicted']} "
              f"(overlap {row['overlap']}, cosine {row['cosine']}, numbers ok {row['numbers_ok']}): {row['statement']}")
    if args.sweep:
        print("  sweep (lexical, embedding → accuracy / precision / recall):")
        for row in result["sweep"]:
            print(f"    {row['lexical_support']:.2f} {row['embedding_support']:.2f} → {row['accuracy']} / "
                  f"{row['precision']} / {row['recall']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
