"""Write evaluation reports: report.json, report.md and PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nlp_service.evaluation.tagging import compare_reports


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def summary_table(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Rows of (view, precision, recall, F1, support) for the terminal and Markdown."""
    rows = []

    def add(name: str, m: dict[str, Any]) -> None:
        rows.append((name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m.get("support", ""))))

    add("concept micro", results["concept"]["micro"])
    add("concept macro", {**results["concept"]["macro"], "support": ""})
    add("category level", results["category_level"]["micro"])
    for lang, m in results["per_language"].items():
        add(f"language {lang}", m)
    for method, m in results["per_method"].items():
        add(f"method {method} (alone)", m)
    add("span exact", results["span"]["exact"])
    add("span overlap", results["span"]["overlap"])
    return rows


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def write_report(report: dict[str, Any], directory: Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    written = []
    path = directory / "report.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(path)
    written += _charts(report, directory)
    path = directory / "report.md"
    path.write_text(_markdown(report), encoding="utf-8")
    written.append(path)
    return written


def _markdown(report: dict[str, Any]) -> str:
    meta, results = report["meta"], report["results"]
    header = ("view", "precision", "recall", "F1", "support")
    lines = [
        f"# Tagging evaluation: {Path(meta['gold_file']).name}",
        "",
        f"- model: `{meta['model']}`; taxonomy: `{meta['taxonomy_version']}`; git commit: `{meta['git_commit']}`",
        f"- gold file sha256: `{meta['gold_sha256']}`; {results['items']} texts "
        f"({', '.join(f'{k} {v}' for k, v in results['by_lang_items'].items())})",
        f"- semantic thresholds: `{meta.get('semantic_thresholds')}`; created {meta['created_at']}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_table(results)]
    lines += ["", "## Per category (concept level)", "", "| category | precision | recall | F1 | support |",
              "|---|---|---|---|---|"]
    for cat, m in results["per_category"].items():
        lines.append(f"| {cat} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    lines += ["", "![per-category F1](per_category_f1.png)", "", "![per-language P/R](per_language_pr.png)", ""]
    for title, key, field in (("Most frequent false positives", "top_false_positives", "surface"),
                              ("Most frequent misses", "top_misses", "evidence")):
        lines += [f"## {title}", "", "| concept | count | examples |", "|---|---|---|"]
        for row in results[key]:
            samples = "<br>".join(
                f"{e['id']}: “{e[field]}” in: {_snippet(e['text'])}" for e in row["examples"])
            lines.append(f"| {row['concept_id']} ({row['label_en']}) | {row['count']} | {samples} |")
        lines.append("")
    return "\n".join(lines)


def _snippet(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _charts(report: dict[str, Any], directory: Path) -> list[Path]:
    plt = _matplotlib()
    results, meta = report["results"], report["meta"]
    subtitle = f"{meta['model']} · taxonomy {meta['taxonomy_version']}"
    written = []

    cats = list(results["per_category"])
    f1s = [results["per_category"][c]["f1"] for c in cats]
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.barh(cats[::-1], f1s[::-1], color="#4C72B0")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (concept level)")
    ax.set_title(f"Per-category F1\n{subtitle}", fontsize=10)
    for y, v in enumerate(f1s[::-1]):
        ax.text(min(v + 0.01, 0.93), y, f"{v:.2f}", va="center", fontsize=8)
    fig.tight_layout()
    path = directory / "per_category_f1.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    langs = list(results["per_language"])
    precision = [results["per_language"][lang]["precision"] for lang in langs]
    recall = [results["per_language"][lang]["recall"] for lang in langs]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = range(len(langs))
    ax.bar([x - 0.2 for x in xs], precision, width=0.4, label="precision", color="#4C72B0")
    ax.bar([x + 0.2 for x in xs], recall, width=0.4, label="recall", color="#DD8452")
    ax.set_xticks(list(xs), langs)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"Precision and recall per language\n{subtitle}", fontsize=10)
    fig.tight_layout()
    path = directory / "per_language_pr.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write_curve(curve: dict[str, Any], directory: Path) -> list[Path]:
    """The threshold sweep: precision/recall/F1 per language against the semantic threshold."""
    plt = _matplotlib()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path_json = directory / "threshold_curve.json"
    path_json.write_text(json.dumps(curve, ensure_ascii=False, indent=2), encoding="utf-8")
    langs = list(curve["per_language"])
    fig, axes = plt.subplots(1, len(langs), figsize=(5 * len(langs), 4), squeeze=False)
    for ax, lang in zip(axes[0], langs):
        points = curve["per_language"][lang]["points"]
        ts = [p["threshold"] for p in points]
        for key, color in (("precision", "#4C72B0"), ("recall", "#DD8452"), ("f1", "#55A868")):
            ax.plot(ts, [p[key] for p in points], label=key, color=color)
        best = curve["per_language"][lang]["best_threshold"]
        ax.axvline(best, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{lang}: best threshold {best:.2f}", fontsize=10)
        ax.set_xlabel("semantic threshold")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle(f"Semantic tagging threshold sweep on {curve['gold_file']} ({curve['model']})", fontsize=10)
    fig.tight_layout()
    path_png = directory / "threshold_curve.png"
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return [path_json, path_png]


def comparison_table(a: dict[str, Any], b: dict[str, Any]) -> str:
    rows = []
    for name, va, vb in compare_reports(a, b):
        if va is None and vb is None:
            continue
        delta = "" if va is None or vb is None else f"{vb - va:+.3f}"
        rows.append((name, "-" if va is None else f"{va:.3f}", "-" if vb is None else f"{vb:.3f}", delta))
    return format_table(rows, ("metric", "A", "B", "B - A"))
