"""Evaluate taxonomy tagging against gold data: concept, category, span, language and method views."""

from __future__ import annotations


import datetime as dt
import subprocess
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nlp_service.evaluation.gold import LANGS, REFERENCE_DATE, GoldItem, file_hash, load_gold
from nlp_service.evaluation.metrics import PRF, ZERO, macro_f1, micro, set_counts
from nlp_service.evaluation.needs_roles import evaluate_needs, evaluate_roles
from nlp_service.extract.roles import MATCHING_ROLES
from nlp_service.extract.tagger import Tag, TaggedText
from nlp_service.extract.taxonomy import Taxonomy

if TYPE_CHECKING:
    from nlp_service.services import Services


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def _span_prf(tags: Sequence[Tag], item: GoldItem, *, overlap: bool) -> PRF:
    """A predicted concept is right when one of its mentions hits a gold span of the same concept."""
    gold = {label.concept_id: label.spans for label in item.labels if label.spans and label.role in MATCHING_ROLES}
    predicted: set[str] = set()
    matched: set[str] = set()
    for tag in tags:
        predicted.add(tag.concept_id)
        spans = gold.get(tag.concept_id, ())
        hit = any((tag.start, tag.end) == s for s in spans) if not overlap else any(
            tag.start < e and s < tag.end for s, e in spans)
        if hit:
            matched.add(tag.concept_id)
    return PRF(len(matched), len(predicted - matched), len(set(gold) - matched))


def evaluate_tagging(
    items: Sequence[GoldItem], predictions: Sequence[TaggedText], taxonomy: Taxonomy, *, examples: int = 3
) -> dict[str, Any]:
    if len(items) != len(predictions):
        raise ValueError("one prediction per gold item is needed")
    concept_counts: dict[str, PRF] = defaultdict(lambda: ZERO)
    category_counts: dict[str, PRF] = defaultdict(lambda: ZERO)
    by_lang: dict[str, list[PRF]] = defaultdict(list)
    category_level: list[PRF] = []
    per_item: list[PRF] = []
    methods: dict[str, list[PRF]] = {"lexical": [], "semantic": [], "learned": []}
    span_exact: list[PRF] = []
    span_overlap: list[PRF] = []
    false_positives: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    fp_examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    miss_examples: dict[str, list[dict[str, str]]] = defaultdict(list)

    def category_of(cid: str) -> str:
        return taxonomy[cid].category if cid in taxonomy.concepts else "unknown"

    for item, predicted in zip(items, predictions):
        # What is scored is what matching uses: offered and needed tags (declined and context are roles' work).
        matching_tags = [t for t in predicted.tags if t.role in MATCHING_ROLES]
        pred_ids = predicted.concept_ids
        gold_ids = item.concept_ids
        counts = set_counts(pred_ids, gold_ids)
        per_item.append(counts)
        by_lang[item.lang].append(counts)
        for cid in pred_ids | gold_ids:
            c = set_counts({cid} & pred_ids, {cid} & gold_ids)
            concept_counts[cid] = concept_counts[cid] + c
            category_counts[category_of(cid)] = category_counts[category_of(cid)] + c
        category_level.append(set_counts({category_of(c) for c in pred_ids}, {category_of(c) for c in gold_ids}))
        for method in methods:
            methods[method].append(set_counts({t.concept_id for t in matching_tags if t.method == method}, gold_ids))
        if any(label.spans for label in item.labels):
            span_exact.append(_span_prf(matching_tags, item, overlap=False))
            span_overlap.append(_span_prf(matching_tags, item, overlap=True))
        for tag in {t.concept_id: t for t in reversed(matching_tags)}.values():  # each concept once, first mention
            if tag.concept_id not in gold_ids:
                false_positives[tag.concept_id] += 1
                if len(fp_examples[tag.concept_id]) < examples:
                    fp_examples[tag.concept_id].append(
                        {"id": item.id, "surface": tag.surface, "method": tag.method, "text": item.text})
        for cid in gold_ids - pred_ids:
            misses[cid] += 1
            if len(miss_examples[cid]) < examples:
                spans = next((l.spans for l in item.labels if l.concept_id == cid), ())
                evidence = item.text[spans[0][0]:spans[0][1]] if spans else ""
                miss_examples[cid].append({"id": item.id, "evidence": evidence, "text": item.text})

    def listing(counter: Counter[str], samples: dict[str, list[dict[str, str]]]) -> list[dict[str, Any]]:
        return [
            {"concept_id": cid, "label_en": taxonomy[cid].label_en if cid in taxonomy.concepts else cid,
             "count": n, "examples": samples[cid]}
            for cid, n in counter.most_common(15)
        ]

    overall = micro(per_item)
    return {
        "items": len(items),
        "by_lang_items": {lang: len(by_lang[lang]) for lang in LANGS},
        "concept": {"micro": overall.to_dict(), "macro": macro_f1(concept_counts)},
        "category_level": {"micro": micro(category_level).to_dict()},
        "per_category": {cat: category_counts[cat].to_dict() for cat in sorted(taxonomy.categories)},
        "per_language": {lang: micro(by_lang[lang]).to_dict() for lang in LANGS if by_lang[lang]},
        "per_method": {m: micro(c).to_dict() for m, c in methods.items()},
        "span": {"exact": micro(span_exact).to_dict(), "overlap": micro(span_overlap).to_dict(),
                 "items_with_spans": len(span_exact)},
        "top_false_positives": listing(false_positives, fp_examples),
        "top_misses": listing(misses, miss_examples),
    }


def report_metadata(*, model: str, taxonomy: Taxonomy, gold_path: Path, gold_hash: str,
                    thresholds: dict[str, float] | None) -> dict[str, Any]:
    return {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "taxonomy_version": taxonomy.full_version,
        "gold_file": str(gold_path),
        "gold_sha256": gold_hash,
        "git_commit": git_commit(),
        "semantic_thresholds": thresholds,
    }


HEADLINE = [
    ("concept micro F1", ("concept", "micro", "f1")),
    ("concept micro precision", ("concept", "micro", "precision")),
    ("concept micro recall", ("concept", "micro", "recall")),
    ("concept macro F1", ("concept", "macro", "f1")),
    ("category-level micro F1", ("category_level", "micro", "f1")),
    ("span exact F1", ("span", "exact", "f1")),
    ("span overlap F1", ("span", "overlap", "f1")),
]


def _get(report: dict[str, Any], path: Sequence[str]) -> float | None:
    node: Any = report
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) else None


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(metric, value in A, value in B) for the headline metrics, per language, method and category."""
    rows: list[tuple[str, float | None, float | None]] = []
    ra, rb = a.get("results", a), b.get("results", b)
    for name, path in HEADLINE:
        rows.append((name, _get(ra, path), _get(rb, path)))
    for group, label in (("per_language", "F1 {}"), ("per_method", "F1 {} tags"), ("per_category", "F1 {}")):
        keys = sorted(set(ra.get(group, {})) | set(rb.get(group, {})))
        for key in keys:
            rows.append((label.format(key), _get(ra, (group, key, "f1")), _get(rb, (group, key, "f1"))))
    return rows


def run_gold_evaluation(services: "Services", gold_path: Path, *, lexical_only: bool = False,
                        progress: Callable[[int], None] | None = None, batch_size: int = 32) -> dict[str, Any]:
    """Tag every gold text with the services' tagger and build the full report (meta + results)."""
    items = load_gold(gold_path, services.taxonomy)
    tagger = services.tagger
    rules_only: list[TaggedText] = []  # the naive baseline in the same run: the cue rules alone
    labels_only: list[TaggedText] = []  # and the labels and aliases alone, without the concept detector
    predictions: list[TaggedText] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        texts, kinds = [i.text for i in batch], [i.kind or None for i in batch]
        tagged = tagger.tag_many(texts, kinds, reference=REFERENCE_DATE, refine=False)
        rules_only += tagged
        predictions += tagger.refine(texts, kinds, tagged)
        if tagger.detector is not None:
            labels_only += tagger.refine(texts, kinds, tagger.tag_many(texts, kinds, reference=REFERENCE_DATE,
                                                                       refine=False, learned=False))
        if progress is not None:
            progress(len(batch))
    semantic = services.tagger.semantic
    meta = report_metadata(model=services.embedder.name, taxonomy=services.taxonomy, gold_path=Path(gold_path),
                           gold_hash=file_hash(gold_path), thresholds=semantic.thresholds if semantic else None)
    meta["lexical_only"] = lexical_only
    results = evaluate_tagging(items, predictions, services.taxonomy)
    results["roles"] = evaluate_roles(items, predictions)
    if tagger.refiner is not None:
        results["roles_rules_only"] = evaluate_roles(items, rules_only)
        results["concept_rules_only"] = evaluate_tagging(items, rules_only, services.taxonomy)["concept"]["micro"]
        meta["role_refiner"] = {k: tagger.refiner.meta.get(k) for k in ("trained_on", "cross_validation",
                                                                        "hyperparameters")}
    if tagger.detector is not None:
        results["concept_labels_only"] = evaluate_tagging(items, labels_only, services.taxonomy)["concept"]["micro"]
        results["roles_labels_only"] = evaluate_roles(items, labels_only)
        meta["concept_detector"] = {k: tagger.detector.meta.get(k) for k in ("trained_on", "cross_validation",
                                                                             "hyperparameters")}
    if any(item.needs is not None for item in items):
        results["needs"] = evaluate_needs(items, predictions)
        reader = services.needs.deliverables
        if reader is not None:  # the naive baseline in the same run: the deliverable patterns alone
            patterns = [_with_pattern_deliverable(services, item, p) for item, p in zip(items, predictions)]
            results["deliverable_patterns_only"] = evaluate_needs(items, patterns)["per_field"]["deliverable"]
            meta["deliverable_reader"] = {k: reader.meta.get(k) for k in ("trained_on", "cross_validation",
                                                                          "hyperparameters")}
    return {"meta": meta, "results": results}


def _with_pattern_deliverable(services: "Services", item, predicted: TaggedText) -> TaggedText:
    if predicted.needs is None:
        return predicted
    found = services.needs.pattern_deliverable(item.text) if item.kind != "volunteer" else None
    return replace(predicted, needs=replace(predicted.needs, deliverable=found))
