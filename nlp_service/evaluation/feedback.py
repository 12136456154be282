"""What coordinators' feedback says about the ranking: acceptance by rank and by band, outcomes, reasons.

A coordinator may record several outcomes for one match over time (contacted, then accepted). Rates are
computed over *pairs* (query, match), each counted once with its latest outcome:

    acceptance rate = accepted / (accepted + declined)        pairs still at "contacted" are pending

Raw event counts per outcome are reported beside them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from nlp_service.store.feedback import BANDS, OUTCOMES, FeedbackRecord

RANKS = tuple(range(1, 11))


def summarise_feedback(records: Iterable[FeedbackRecord], *, top_reasons: int = 10) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r.id)
    latest: dict[tuple[str, str], FeedbackRecord] = {}
    for record in records:
        latest[(record.entry.query_key, record.entry.match_id)] = record
    by_rank = {str(rank): _rate(r for r in latest.values() if r.entry.rank == rank) for rank in RANKS}
    beyond = [r for r in latest.values() if r.entry.rank > RANKS[-1]]
    if beyond:
        by_rank[f">{RANKS[-1]}"] = _rate(beyond)
    reasons = Counter(r.entry.reason.casefold() for r in records if r.entry.outcome == "declined" and r.entry.reason)
    return {
        "events": len(records),
        "pairs": len(latest),
        "outcomes": {o: sum(1 for r in records if r.entry.outcome == o) for o in OUTCOMES},
        "latest_outcomes": {o: sum(1 for r in latest.values() if r.entry.outcome == o) for o in OUTCOMES},
        "overall": _rate(latest.values()),
        "by_rank": by_rank,
        "by_band": {band: _rate(r for r in latest.values() if r.entry.band == band) for band in BANDS},
        "decline_reasons": [{"reason": reason, "count": count} for reason, count in reasons.most_common(top_reasons)],
    }


def _rate(records: Iterable[FeedbackRecord]) -> dict[str, Any]:
    counts = Counter(r.entry.outcome for r in records)
    decided = counts["accepted"] + counts["declined"]
    return {
        "pairs": sum(counts.values()),
        "accepted": counts["accepted"],
        "declined": counts["declined"],
        "pending": counts["contacted"],
        "acceptance_rate": round(counts["accepted"] / decided, 4) if decided else None,
    }


def feedback_tables(summary: dict[str, Any]) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """(title, header, rows) for printing with ``evaluation.report.format_table``."""
    def row(name: str, rate: dict[str, Any]) -> tuple[str, ...]:
        value = rate["acceptance_rate"]
        return (name, str(rate["pairs"]), str(rate["accepted"]), str(rate["declined"]), str(rate["pending"]),
                "-" if value is None else f"{value:.3f}")

    header = ("", "pairs", "accepted", "declined", "pending", "acceptance rate")
    return [
        ("by rank", ("rank", *header[1:]), [row(k, v) for k, v in summary["by_rank"].items()]),
        ("by band", ("band", *header[1:]), [row(k, v) for k, v in summary["by_band"].items()]
         + [row("all", summary["overall"])]),
        ("outcomes", ("outcome", "events", "latest per pair"),
         [(o, str(summary["outcomes"][o]), str(summary["latest_outcomes"][o])) for o in OUTCOMES]),
        ("most frequent decline reasons", ("reason", "count"),
         [(r["reason"], str(r["count"])) for r in summary["decline_reasons"]] or [("-", "0")]),
    ]
