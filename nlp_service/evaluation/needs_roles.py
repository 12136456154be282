"""Evaluate tag roles and structured needs against gold format 2 (see corpus/eval/GUIDELINES.md)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Sequence

from nlp_service.evaluation.gold import NEEDS_FIELDS, GoldItem
from nlp_service.evaluation.metrics import PRF, ZERO, micro
from nlp_service.extract.roles import MATCHING_ROLES, ROLES
from nlp_service.extract.tagger import TaggedText

_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def evaluate_roles(items: Sequence[GoldItem], predictions: Sequence[TaggedText], *, examples: int = 3) -> dict[str, Any]:
    """Role accuracy on concepts both sides found, a confusion table, and declined/context leaks.

    A *leak* is a concept the gold marks declined or context that the tagger returns as offered or needed:
    the error that makes a negated skill look like a need.
    """
    correct = total = 0
    confusion: Counter[tuple[str, str]] = Counter()
    leaks = 0
    guarded = 0  # gold declined/context concepts
    leak_examples: list[dict[str, str]] = []
    by_focus: dict[str, dict[str, int]] = defaultdict(lambda: {"texts": 0, "guarded": 0, "leaks": 0})
    for item, predicted in zip(items, predictions):
        predicted_roles: dict[str, str] = {}
        for tag in predicted.tags:
            # one role per concept: a matching role wins if any mention has it
            current = predicted_roles.get(tag.concept_id)
            if current is None or (tag.role in MATCHING_ROLES and current not in MATCHING_ROLES):
                predicted_roles[tag.concept_id] = tag.role
        focus = item.focus or "other"
        by_focus[focus]["texts"] += 1
        for cid, gold_role in item.roles.items():
            pred = predicted_roles.get(cid)
            if pred is not None:
                total += 1
                correct += pred == gold_role
                confusion[(gold_role, pred)] += 1
            if gold_role not in MATCHING_ROLES:
                guarded += 1
                by_focus[focus]["guarded"] += 1
                if pred in MATCHING_ROLES:
                    leaks += 1
                    by_focus[focus]["leaks"] += 1
                    if len(leak_examples) < 20:
                        leak_examples.append({"id": item.id, "concept_id": cid, "gold": gold_role, "predicted": pred,
                                              "text": item.text})
    return {
        "accuracy": correct / total if total else 0.0,
        "compared": total,
        "confusion": {g: {p: confusion[(g, p)] for p in ROLES} for g in ROLES},
        "guarded_concepts": guarded,
        "leaks": leaks,
        "leak_examples": leak_examples[: max(examples, 20)],
        "by_focus": dict(by_focus),
    }


def _scalar(raw: Any, field: str) -> Any:
    if raw is None:
        return None
    if field == "location":
        return (raw.get("name_en") or "").replace("’", "'").casefold() or None
    if field == "mode":
        return raw.get("value")
    if field in ("hours_per_week", "total_hours"):
        return round(float(raw["value"]), 2)
    if field == "duration":  # in days, to the nearest 5% ("半年" = 6 months = 0.5 year)
        days = float(raw["value"]) * _DAYS.get(raw.get("unit"), 0)
        return round(math.log(days) / math.log(1.05)) if days > 0 else 0
    if field == "deadline":
        return raw.get("date")
    raise KeyError(field)


def _items(raw: Any, field: str) -> set[str]:
    key = {"dates": "date", "languages": "code", "causes": "id"}[field]
    return {entry[key] for entry in raw or [] if isinstance(entry, dict) and entry.get(key)}


def _overlaps(a: Any, b: Any) -> bool:
    sa, sb = (a or {}).get("span"), (b or {}).get("span")
    return bool(sa and sb and sa["start"] < sb["end"] and sb["start"] < sa["end"])


def needs_counts(gold: dict[str, Any], predicted: dict[str, Any]) -> dict[str, PRF]:
    """Per-field counts for one text. Scalars: right value = TP; a wrong value is both FP and FN."""
    out: dict[str, PRF] = {}
    for field in NEEDS_FIELDS:
        g, p = gold.get(field), predicted.get(field)
        if field in ("dates", "languages", "causes"):
            gs, ps = _items(g, field), _items(p, field)
            out[field] = PRF(len(gs & ps), len(ps - gs), len(gs - ps))
        elif field == "deliverable":
            if g and p:
                hit = _overlaps(g, p)
                out[field] = PRF(int(hit), int(not hit), int(not hit))
            else:
                out[field] = PRF(0, int(bool(p)), int(bool(g)))
        else:
            gv, pv = _scalar(g, field), _scalar(p, field)
            if gv is not None and pv is not None:
                same = gv == pv
                out[field] = PRF(int(same), int(not same), int(not same))
            else:
                out[field] = PRF(0, int(pv is not None), int(gv is not None))
    return out


def evaluate_needs(items: Sequence[GoldItem], predictions: Sequence[TaggedText], *, examples: int = 5) -> dict[str, Any]:
    per_field: dict[str, list[PRF]] = defaultdict(list)
    per_lang: dict[str, dict[str, list[PRF]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[str, list[dict[str, Any]]] = defaultdict(list)
    scored = 0
    for item, predicted in zip(items, predictions):
        if item.needs is None or predicted.needs is None:
            continue
        scored += 1
        pred = predicted.needs.to_dict()
        for field, counts in needs_counts(item.needs, pred).items():
            per_field[field].append(counts)
            per_lang[item.lang][field].append(counts)
            if (counts.fp or counts.fn) and len(errors[field]) < examples:
                errors[field].append({"id": item.id, "gold": _brief(item.needs.get(field)),
                                      "predicted": _brief(pred.get(field)), "text": item.text})
    fields = {f: micro(per_field[f]).to_dict() if per_field[f] else ZERO.to_dict() for f in NEEDS_FIELDS}
    return {
        "texts": scored,
        "per_field": fields,
        "per_language": {lang: {f: micro(v).to_dict() for f, v in table.items()} for lang, table in per_lang.items()},
        "errors": dict(errors),
    }


def _brief(value: Any) -> Any:
    """A value without its span offsets, for error listings."""
    if isinstance(value, list):
        return [_brief(v) for v in value]
    if isinstance(value, dict):
        return {k: (v.get("surface") if k == "span" and isinstance(v, dict) else v) for k, v in value.items()
                if k not in ("id",) or "name_en" not in value}
    return value


def load_second_annotation(path, items: Sequence[GoldItem]) -> dict[str, dict[str, Any]]:
    """A second annotator's needs blocks ({"id", "needs"} per line), checked like gold needs, for ``items``."""
    from nlp_service.errors import GoldDataError
    from nlp_service.evaluation.gold import _check_needs
    from nlp_service.jsonl import JsonLineError, iter_jsonl

    texts = {item.id: item.text for item in items}
    second: dict[str, dict[str, Any]] = {}
    try:
        rows = list(iter_jsonl(path))
    except JsonLineError as exc:
        raise GoldDataError(str(exc)) from exc
    for where, raw in rows:
        if not isinstance(raw, dict) or raw.get("id") not in texts:
            raise GoldDataError(f"{where}: each line needs the 'id' of a text in the gold file")
        _check_needs(raw.get("needs"), texts[raw["id"]], where)
        second[raw["id"]] = raw["needs"]
    missing = sorted(set(texts) - set(second))
    if missing:
        raise GoldDataError(f"{path}: no second annotation for {len(missing)} gold texts, e.g. {missing[0]}")
    return second


def needs_agreement(items: Sequence[GoldItem], second: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-field P/R/F1 of a second annotation scored as if it were a prediction against the gold."""
    per_field: dict[str, list[PRF]] = defaultdict(list)
    for item in items:
        if item.needs is None:
            continue
        for field, counts in needs_counts(item.needs, second[item.id]).items():
            per_field[field].append(counts)
    return {f: micro(per_field[f]).to_dict() if per_field[f] else ZERO.to_dict() for f in NEEDS_FIELDS}
