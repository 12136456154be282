"""Frozen settings. Only :func:`load_settings` reads the environment (prefix ``NLP_SERVICE_``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

ENV_PREFIX = "NLP_SERVICE_"
DEFAULT_MODEL_DIR = Path("models/use-multilingual-v3")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the services need, as paths and numbers. Relative paths resolve against the CWD."""

    taxonomy_dir: Path = Path("corpus/taxonomy")
    corpus_dir: Path = Path("corpus/documents")
    index_dir: Path = Path("var/index")
    model_path: Path = DEFAULT_MODEL_DIR
    cache_dir: Path = Path("var/cache")
    causes_file: Path = Path("corpus/needs/causes.jsonl")
    # Coordinators' feedback on matches (SQLite, WAL; only a SHA-256 of each query text is kept).
    feedback_db: Path = Path("var/store/feedback.sqlite")
    # The durable document store (SQLite, WAL). Default: documents.sqlite inside index_dir.
    store_path: Path | None = None
    # Write API tokens: a comma-separated list, or a file with one token a line. No token: writes refused.
    write_tokens: str = ""
    write_tokens_file: Path | None = None
    # How often a worker looks for documents written since its snapshot (the write-visibility bound).
    poll_seconds: float = 0.25
    # Semantic (embedding) tagging of query texts: off by default, it cost ~47% of a match and added ~0 F1.
    query_semantic_tags: bool = False
    # Semantic tagging: a clause is tagged with a concept when its cosine similarity to one of the
    # concept's labels reaches the threshold of the clause's language. The defaults are the F1-best points
    # of `nlp-service calibrate` on corpus/eval/dev.jsonl (corpus/eval/calibration/threshold_curve.json).
    semantic_threshold_zh: float = 0.64
    semantic_threshold_en: float = 0.80
    # Off by default since taxonomy 1.5: with the wider alias lists, semantic tags were right 6 times of 48 on
    # the dev + fresh gold (even above cosine 0.85), and dropping them raised tag F1 there (0.789 -> 0.805) and
    # on the held-out ctx-c + gen-e sets (0.764 -> 0.773); on the test part it cost 0.006 (0.610 -> 0.604).
    semantic_tags: bool = False
    # The learned correction of the rule roles (`nlp-service train-roles`); used when the folder exists and
    # matches the embedder and the rules, otherwise the rules alone decide (with a warning in the log).
    role_model_path: Path = Path("models/role-refiner")
    role_refiner: bool = True
    # The learned concept detector (`nlp-service train-concepts`): tags a clause with a concept it describes
    # without naming it. Used when the folder exists and matches the embedder and the taxonomy.
    concept_model_path: Path = Path("models/concept-detector")
    concept_detector: bool = True
    # The learned deliverable reader (`nlp-service train-needs`): which clause of a request names its deliverable.
    # Used when the folder exists and matches the embedder, otherwise the deliverable patterns decide.
    needs_model_path: Path = Path("models/needs-reader")
    needs_reader: bool = True
    # Ranking: final score = (1 - tag_weight) * cosine + tag_weight * skill overlap.
    tag_weight: float = 0.15
    candidate_pool: int = 100
    query_cache_size: int = 1_024  # query analyses (tags, needs, vector) kept per worker, by text
    max_text_chars: int = 20_000
    max_body_bytes: int = 256 * 1024
    embed_batch_size: int = 64
    threads: int = 1

    @property
    def document_store_path(self) -> Path:
        return Path(self.store_path) if self.store_path is not None else Path(self.index_dir) / "documents.sqlite"

    def tokens(self) -> frozenset[str]:
        """The write tokens from ``write_tokens`` and ``write_tokens_file`` (blank lines and # comments skipped)."""
        found = [t.strip() for t in self.write_tokens.split(",") if t.strip()]
        if self.write_tokens_file is not None:
            try:
                lines = Path(self.write_tokens_file).read_text(encoding="utf-8").splitlines()
            except OSError:
                lines = []
            found += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return frozenset(found)

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``NLP_SERVICE_*`` variables, then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = env.get(ENV_PREFIX + field.name.upper())
        if raw is None:
            continue
        default = getattr(Settings(), field.name)
        if field.name in ("store_path", "write_tokens_file"):
            values[field.name] = Path(raw) if raw.strip() else None
        elif isinstance(default, bool):
            values[field.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
        elif isinstance(default, Path):
            values[field.name] = Path(raw)
        elif isinstance(default, int):
            values[field.name] = int(raw)
        elif isinstance(default, float):
            values[field.name] = float(raw)
        else:
            values[field.name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
