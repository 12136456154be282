"""Public benchmarks nobody on this team wrote, run in an ESCO taxonomy mode.

- Decorte et al. TECH / HOUSE (validation sets): rank ESCO skills per sentence; R-Precision@5 and MRR.
- SkillSpan dev (Zhang et al. 2022): skill/knowledge span extraction; strict and overlap F1.
- CSCO 2022: map a free-text Chinese job name to its occupation code; accuracy@1 and @5.

ESCO is (c) European Union, CC BY 4.0: "This service uses the ESCO classification of the European Commission."
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nlp_service.evaluation.metrics import micro, r_precision_at_k, reciprocal_rank, span_counts
from nlp_service.extract.segment import BilingualSegmenter
from nlp_service.extract.tagger import LexicalTagger
from nlp_service.extract.taxonomy import Category, Concept, Taxonomy
from nlp_service.index.embedder import Embedder

logger = logging.getLogger(__name__)

ESCO_NOTICE = "This service uses the ESCO classification of the European Commission (CC BY 4.0; modified copy)."
SKILLS_FILE = "esco/esco_skills_en_joined_v1.2uri_v1.1.1labels.csv"
LABEL_SPACE_FILE = "esco/decorte_label_space_esco_1.1.0.txt"
EXCLUDED = {"LABEL NOT PRESENT", "UNDERSPECIFIED"}

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class EscoSkill:
    label: str
    alt_labels: tuple[str, ...]


def load_esco_label_space(data_dir: Path) -> list[EscoSkill]:
    """The 13,896 preferred labels of the Decorte label space, with ESCO alternative labels where known."""
    data_dir = Path(data_dir)
    alts: dict[str, tuple[str, ...]] = {}
    with open(data_dir / SKILLS_FILE, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["preferredLabel"]:
                alts[row["preferredLabel"]] = tuple(a for a in row["altLabels"].split("|") if a.strip())
    labels = [line.strip() for line in (data_dir / LABEL_SPACE_FILE).read_text(encoding="utf-8").splitlines()]
    labels = list(OrderedDict.fromkeys(label for label in labels if label))
    return [EscoSkill(label, alts.get(label, ())) for label in labels]


def esco_taxonomy(skills: Sequence[EscoSkill]) -> Taxonomy:
    """ESCO as a (monolingual) taxonomy, so the product's lexical tagger can run over it."""
    concepts = [
        Concept(id=f"esco.s{i}", category="esco", label_en=s.label, label_zh=s.label, alt_en=s.alt_labels)
        for i, s in enumerate(skills)
    ]
    return Taxonomy("esco", "1.1.0", [Category("esco", "ESCO skills", "ESCO技能")], concepts)


class CachedEmbedder:
    """Embeds label lists once per model and content; vectors live under the cache folder as .npy."""

    def __init__(self, embedder: Embedder, cache_dir: Path,
                 progress: Callable[[str, int, int], None] | None = None) -> None:
        self.embedder = embedder
        self.cache_dir = Path(cache_dir)
        self.progress = progress  # progress(tag, done, total) while embedding uncached lists

    def embed(self, texts: Sequence[str], tag: str) -> np.ndarray:
        digest = hashlib.sha256(("\n".join(texts) + self.embedder.name).encode("utf-8")).hexdigest()[:16]
        path = self.cache_dir / f"bench-{tag}-{digest}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
        blocks = []
        for start in range(0, len(texts), 2048):
            blocks.append(self.embedder.embed(list(texts[start : start + 2048])))
            if self.progress is not None:
                self.progress(tag, min(start + 2048, len(texts)), len(texts))
        vectors = np.vstack(blocks) if blocks else np.zeros((0, self.embedder.dimension), dtype=np.float32)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        tmp.replace(path)
        return vectors


class EscoRanker:
    """Ranks ESCO skills for a sentence: literal label hits first, then max cosine over each skill's labels."""

    def __init__(self, skills: Sequence[EscoSkill], embedder: CachedEmbedder, segmenter: BilingualSegmenter,
                 *, alt_labels: bool = True) -> None:
        self.skills = list(skills)
        self.embedder = embedder
        texts: list[str] = []
        owners: list[int] = []
        for i, skill in enumerate(self.skills):
            for label in (skill.label, *(skill.alt_labels if alt_labels else ())):
                texts.append(label)
                owners.append(i)
        self.owners = np.asarray(owners)
        self.vectors = embedder.embed(texts, "esco-labels" if alt_labels else "esco-preferred")
        self.taxonomy = esco_taxonomy(self.skills if alt_labels else [EscoSkill(s.label, ()) for s in self.skills])
        self.lexical = LexicalTagger(self.taxonomy, segmenter)
        self.segmenter = segmenter

    def scores(self, sentences: Sequence[str]) -> np.ndarray:
        queries = self.embedder.embedder.embed(list(sentences))
        sims = queries @ self.vectors.T
        out = np.full((len(sentences), len(self.skills)), -1.0, dtype=np.float32)
        np.maximum.at(out.T, self.owners, sims.T)
        for row, sentence in enumerate(sentences):
            for tag in self.lexical.tag_tokens(sentence, self.segmenter.segment(sentence)):
                out[row, int(tag.concept_id[len("esco.s"):])] += 1.0
        return out

    def rank(self, sentences: Sequence[str], k: int = 50) -> list[list[str]]:
        scores = self.scores(sentences)
        top = np.argsort(-scores, axis=1)[:, :k]
        return [[self.skills[j].label for j in row] for row in top]


def run_decorte(ranker: EscoRanker, csv_path: Path) -> dict[str, Any]:
    gold: OrderedDict[str, set[str]] = OrderedDict()
    with open(csv_path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["label"] in EXCLUDED:
                continue
            gold.setdefault(row["sentence"], set()).add(row["label"])
    sentences = list(gold)
    ranked = ranker.rank(sentences, k=100)
    rp5 = [r_precision_at_k(r, gold[s], 5) for s, r in zip(sentences, ranked)]
    mrr = [reciprocal_rank(r, gold[s]) for s, r in zip(sentences, ranked)]
    return {"sentences": len(sentences), "rp@5": round(float(np.mean(rp5)), 4), "mrr": round(float(np.mean(mrr)), 4)}


def _bio_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        if tag.startswith("B") or tag == "O":
            if start is not None:
                spans.append((start, i))
                start = None
            if tag.startswith("B"):
                start = i
        elif tag.startswith("I") and start is None:
            start = i
    return spans


def run_skillspan(ranker: EscoRanker, json_path: Path) -> dict[str, Any]:
    """Spans predicted by literal ESCO label matches (token offsets), against skill and knowledge spans."""
    exact, overlap = [], []
    sentences = 0
    with open(json_path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            tokens = row["tokens"]
            gold = _bio_spans(row["tags_skill"]) + _bio_spans(row["tags_knowledge"])
            text, starts = "", []
            for token in tokens:
                starts.append(len(text))
                text += token + " "
            predicted = []
            for tag in ranker.lexical.tag_tokens(text, ranker.segmenter.segment(text)):
                first = max(i for i, s in enumerate(starts) if s <= tag.start)
                last = max(i for i, s in enumerate(starts) if s < tag.end)
                predicted.append((first, last + 1))
            exact.append(span_counts(predicted, gold, overlap=False))
            overlap.append(span_counts(predicted, gold, overlap=True))
            sentences += 1
    return {"sentences": sentences, "exact": micro(exact).to_dict(), "overlap": micro(overlap).to_dict()}


def run_csco(embedder: CachedEmbedder, data_dir: Path) -> dict[str, Any]:
    """Rank level-4 occupations by max cosine over name, aliases and name + definition."""
    with open(Path(data_dir) / "csco22.csv", encoding="utf-8") as handle:
        occupations = [r for r in csv.DictReader(handle) if r["level"] == "4"]
    with open(Path(data_dir) / "testcases.csv", encoding="utf-8") as handle:
        cases = list(csv.DictReader(handle))
    texts, owners = [], []
    for i, occ in enumerate(occupations):
        variants = {occ["name"], *(a for a in occ["alias"].split("、") if a)}
        if occ["definition"]:
            variants.add(f"{occ['name']}：{occ['definition']}")
        for variant in variants:
            texts.append(variant)
            owners.append(i)
    vectors = embedder.embed(texts, "csco")
    queries = embedder.embedder.embed([c["job_name"] for c in cases])
    sims = queries @ vectors.T
    scores = np.full((len(cases), len(occupations)), -1.0, dtype=np.float32)
    np.maximum.at(scores.T, np.asarray(owners), sims.T)
    top = np.argsort(-scores, axis=1)[:, :5]
    codes = [occ["code"] for occ in occupations]
    at1 = np.mean([codes[row[0]] == case["expected_code"] for row, case in zip(top, cases)])
    at5 = np.mean([case["expected_code"] in {codes[j] for j in row} for row, case in zip(top, cases)])
    return {"cases": len(cases), "occupations": len(occupations), "accuracy@1": round(float(at1), 4),
            "accuracy@5": round(float(at5), 4)}


BENCHMARKS = ("decorte", "skillspan", "csco")


def run_benchmarks(embedder: Embedder, segmenter: BilingualSegmenter, data_dir: Path, cache_dir: Path,
                   chosen: Sequence[str] = BENCHMARKS, *, alt_labels: bool = True,
                   report: Callable[[str, dict[str, Any]], None] | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run the chosen benchmarks; ``report(name, result)`` is called as each one finishes."""
    from nlp_service.evaluation.tagging import git_commit

    cached = CachedEmbedder(embedder, cache_dir, progress)
    results: dict[str, Any] = {"meta": {"model": embedder.name, "git_commit": git_commit(),
                                        "alt_labels": alt_labels, "notice": ESCO_NOTICE}}
    bench = Path(data_dir) / "benchmarks"

    def done(name: str, result: dict[str, Any]) -> None:
        results[name] = result
        if report is not None:
            report(name, result)

    if {"decorte", "skillspan"} & set(chosen):
        ranker = EscoRanker(load_esco_label_space(data_dir), cached, segmenter, alt_labels=alt_labels)
        if "decorte" in chosen:
            for name in ("tech", "house"):
                path = bench / "decorte_esco_linking" / f"{name}_validation_annotations.csv"
                done(f"decorte_{name}_validation", run_decorte(ranker, path))
        if "skillspan" in chosen:
            done("skillspan_dev", run_skillspan(ranker, bench / "skillspan" / "dev.json"))
    if "csco" in chosen:
        done("csco22", run_csco(cached, bench / "csco22_zh"))
    return results
