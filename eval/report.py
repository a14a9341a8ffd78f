"""Write an evaluation's report: report.json, report.md (side-by-side table, ratios against the
naive baseline) and PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from eval.scoring import FRACTION_METRICS, STAGES

log = logging.getLogger(__name__)

BASELINE = "baseline-naive"
LOWER_IS_BETTER = {"false_abstention_rate", "model_fallback_rate"}
LABELS = {
    "retrieval_recall@1": "retrieval recall@1", "retrieval_recall@5": "retrieval recall@5",
    "retrieval_recall@10": "retrieval recall@10", "mrr": "MRR (top 10)", "citation_recall": "citation recall (ALCE)",
    "citation_precision": "citation precision (ALCE)", "gold_coverage": "gold coverage",
    "gold_in_prompt": "gold quotes the model read",
    "abstention_accuracy": "abstention accuracy", "false_abstention_rate": "false abstention rate ↓",
    "model_fallback_rate": "answered by quotes after the model failed ↓",
    "language_accuracy": "language accuracy", "must_mention": "must-mention hit rate",
    "judge_faithfulness": "judge faithfulness (1-5)", "judge_helpfulness": "judge helpfulness (1-5)",
    "latency_sources_s_p50": "time to sources, median (s) ↓", "latency_first_token_s_p50": "time to first token, median (s) ↓",
    "latency_total_s_p50": "total time, median (s) ↓",
}
STAGE_LABELS = {"sources_s": "time to sources", "first_token_s": "time to first token", "total_s": "total"}
COLORS = {"policylab": "#1f6f8b", BASELINE: "#e07a5f", "bm25": "#81b29a"}


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    plots = write_plots(report, out)
    (out / "report.md").write_text(markdown(report, plots), encoding="utf-8")


# --- markdown ---------------------------------------------------------------------------
def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric.startswith("latency_"):
        return f"{value:.2f}"
    if metric.startswith("judge_"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "—"
    if base == 0:
        return "—" if value == 0 else "∞"
    return f"×{value / base:.2f}"


def metric_table(report: dict[str, Any]) -> list[str]:
    systems = list(report["systems"])
    others = [s for s in systems if s != BASELINE] if BASELINE in systems else []
    metrics = [m for m in LABELS if any(m in report["systems"][s] for s in systems)]
    header = ["metric", *systems, *(f"{s} ÷ naive" for s in others)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in metrics:
        values = [report["systems"][s].get(metric) for s in systems]
        base = report["systems"].get(BASELINE, {}).get(metric)
        ratios = [_ratio(report["systems"][s].get(metric), base) for s in others]
        lines.append("| " + " | ".join([LABELS[metric], *(_fmt(v, metric) for v in values), *ratios]) + " |")
    return lines


def latency_table(report: dict[str, Any]) -> list[str]:
    lines = ["| system | mode | n | " + " | ".join(f"{STAGE_LABELS[s]} p50 / p95" for s in STAGES) + " |",
             "|---|---|---|" + "---|" * len(STAGES)]
    for system, modes in report.get("latency", {}).items():
        for mode, stages in modes.items():
            n = max((v["n"] for v in stages.values()), default=0)
            cells = [f"{stages[s]['p50']:.2f} / {stages[s]['p95']:.2f}" if s in stages else "—" for s in STAGES]
            lines.append(f"| {system} | {mode} | {n} | " + " | ".join(cells) + " |")
    return lines


def _yes(flag: Any) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


def question_table(report: dict[str, Any]) -> list[str]:
    systems = list(report["systems"])
    answering = [s for s in systems if any("answer" in q["systems"].get(s, {}) for q in report["questions"])]
    header = ["id", "mode", "lang", "answerable", *(f"recall@5 {s}" for s in systems),
              *(f"abstained {s}" for s in answering), *(f"cit. R/P {s}" for s in answering),
              *(f"gold cov. {s}" for s in answering)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for q in report["questions"]:
        row = [q["id"], q["mode"], q["language"], _yes(q["answerable"])]
        for s in systems:
            r = q["systems"].get(s, {})
            row.append(f"{r['recall@5']:.2f}" if "recall@5" in r else "—")
        for s in answering:
            row.append(_yes(q["systems"][s].get("abstained")))
        for s in answering:
            r = q["systems"][s]
            rec, prec = r.get("citation_recall"), r.get("citation_precision")
            row.append(f"{_fmt(rec, '')}/{_fmt(prec, '')}" if rec is not None or prec is not None else "—")
        for s in answering:
            covered = q["systems"][s].get("gold_covered")
            row.append(f"{sum(covered)}/{len(covered)}" if covered else "—")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    meta = report["meta"]
    index = meta.get("index", {})
    lines = [
        "# Evaluation report", "",
        f"Command: `{meta.get('command') or 'policylab eval'}`  ",
        f"Questions: {meta['questions']} from `{meta['questions_file']}` ({meta['answerable']} answerable, "
        f"{meta['gold_items']} gold quotes); corpus `{meta['corpus']}` ({index.get('documents', '?')} documents, "
        f"{index.get('chunks', '?')} policylab chunks).  ",
        f"policylab answer backend: **{meta.get('backend', '?')}**.  ",
    ]
    if BASELINE in meta:
        naive = meta[BASELINE]
        lines.append(f"baseline-naive: {naive['chunks']} chunks of 1000/200 characters, top 4 stuffed into the prompt; "
                     f"answers with **{naive['answering']}**.  ")
        if naive["answering"].startswith("top-passage"):
            lines.append("*No chat model was available, so the naive baseline's answer is the first two sentences of its "
                         "top passage with the citation [1]; its citation figures then only say that a verbatim copy "
                         "supports itself.*  ")
    lines += [
        f"Created {meta['created']} in {meta['seconds']:.0f} s on {meta['machine']['cpus']} CPUs "
        f"(Python {meta['machine']['python']}). Judge: {meta['judge']['status']}.", "",
        "## Metrics", "",
        "Fractions 0-1 unless noted (↓: lower is better); \"—\": does not apply. Ratios are against the naive baseline. "
        "Definitions and the support approximation: docs/evaluation.md.", "",
        *metric_table(report), "",
        "## Latency by mode (seconds)", "",
        *latency_table(report), "",
        "## Per question", "",
        *question_table(report), "",
    ]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    thresholds = meta.get("support_thresholds", {})
    lines += ["## Notes", "",
              "- Citation support is approximated with the product's own `SupportScorer` (word overlap, e5 similarity, "
              f"numbers must match; thresholds {thresholds}); its agreement with hand labels is reported by "
              "`python -m eval.calibrate_support`. The product verifies its citations with the same test, so its own "
              "citation figures are an upper bound; the baseline is judged by the same rule on whole passages.",
              "- Retrieval recall counts gold quotes (micro average); MRR averages per answerable question over the top 10.",
              ""]
    return "\n".join(lines)


# --- plots ------------------------------------------------------------------------------
def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """PNG plots; returns their file names (none if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots.")
        return []
    written = []
    for name, draw in (("metrics.png", _plot_metrics), ("score_distributions.png", _plot_distributions),
                       ("latency.png", _plot_latency), ("retrieval_scores.png", _plot_dense_scores)):
        fig = draw(plt, report)
        if fig is None:
            continue
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)
    return written


def _plot_metrics(plt: Any, report: dict[str, Any]) -> Any:
    systems = list(report["systems"])
    metrics = [m for m in FRACTION_METRICS if any(m in report["systems"][s] for s in systems)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(metrics) * len(systems) / 2 + 1.5))
    height = 0.8 / len(systems)
    for i, system in enumerate(systems):
        values = [report["systems"][system].get(m, float("nan")) for m in metrics]
        positions = [y + i * height for y in range(len(metrics))]
        ax.barh(positions, values, height=height, label=system, color=COLORS.get(system))
        for y, value in zip(positions, values):
            if not math.isnan(value):
                ax.text(min(value, 0.93) + 0.01, y, f"{value:.2f}", va="center", fontsize=7)
    ax.set_yticks([y + 0.4 - height / 2 for y in range(len(metrics))], [LABELS[m] for m in metrics])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction (0-1)")
    ax.set_title("Metrics by system")
    ax.legend(loc="lower right")
    return fig


def _plot_distributions(plt: Any, report: dict[str, Any]) -> Any:
    panels = [("recall@5", "retrieval recall@5 per question"), ("rr", "reciprocal rank per question"),
              ("citation_recall", "citation recall per answer"), ("citation_precision", "citation precision per answer")]
    systems = list(report["systems"])
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), sharey=True)
    for ax, (key, title) in zip(axes, panels):
        data, names = [], []
        for system in systems:
            values = [q["systems"][system][key] for q in report["questions"]
                      if q["systems"].get(system, {}).get(key) is not None]
            if values:
                data.append(values)
                names.append(system)
        if data:
            ax.boxplot(data, widths=0.5, showmeans=True)
            for i, values in enumerate(data, start=1):
                jitter = [i + ((j % 7) - 3) * 0.04 for j in range(len(values))]
                ax.scatter(jitter, values, s=12, alpha=0.6, color=COLORS.get(names[i - 1]))
            ax.set_xticks(range(1, len(names) + 1), names, rotation=15)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.05, 1.05)
    return fig


def _plot_latency(plt: Any, report: dict[str, Any]) -> Any:
    latency = report.get("latency", {})
    modes = list(dict.fromkeys(m for system in latency.values() for m in system))
    if not modes:
        return None
    fig, axes = plt.subplots(1, len(STAGES), figsize=(4.2 * len(STAGES), 3.4))
    systems = list(latency)
    width = 0.8 / max(len(systems), 1)
    for ax, stage in zip(axes, STAGES):
        for i, system in enumerate(systems):
            values = [latency[system].get(mode, {}).get(stage, {}).get("p50", float("nan")) for mode in modes]
            ax.bar([x + i * width for x in range(len(modes))], values, width=width, label=system, color=COLORS.get(system))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(modes))], modes)
        ax.set_title(f"{STAGE_LABELS[stage]}, median (s)", fontsize=9)
    axes[0].legend(fontsize=8)
    return fig


def _plot_dense_scores(plt: Any, report: dict[str, Any]) -> Any:
    from assistant.scope import ABSTAIN_DENSE_SCORE, ABSTAIN_DENSE_SCORE_CROSS_LINGUAL

    answerable = [q["systems"]["policylab"].get("best_dense_score") for q in report["questions"] if q["answerable"]]
    unanswerable = [q["systems"]["policylab"].get("best_dense_score") for q in report["questions"] if not q["answerable"]]
    answerable = [v for v in answerable if v]
    unanswerable = [v for v in unanswerable if v]
    if not answerable and not unanswerable:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist([answerable, unanswerable], bins=12, label=["answerable", "not in the library"],
            color=[COLORS["policylab"], "#bbbbbb"])
    ax.axvline(ABSTAIN_DENSE_SCORE, color="black", linestyle="--", linewidth=1, label="abstention threshold")
    ax.axvline(ABSTAIN_DENSE_SCORE_CROSS_LINGUAL, color="black", linestyle=":", linewidth=1,
               label="… across languages")
    ax.set_xlabel("best e5 cosine among policylab's retrieved passages")
    ax.set_ylabel("questions")
    ax.legend(fontsize=8, loc="upper left")
    return fig
