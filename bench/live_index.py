"""Live index at scale (issue 7): the naive service and ours, side by side, measured in one run.

    .venv/bin/python bench/live_index.py --quick              # 10k documents, short load: a smoke run
    .venv/bin/python bench/live_index.py --docs 100000
    .venv/bin/python bench/live_index.py --docs 1000000       # ~7 GB of generated data under --work-dir

Writes bench/results/live-<timestamp>.json and prints a Markdown table. The machine is a shared 2-core VM:
read medians and ratios measured in one run. Every server listens on 127.0.0.1 and is killed (its whole
process group) when the run ends, also on an error or Ctrl-C.

**Data (synthesised, benchmark-only).** N documents, half volunteers and half requests. Each is drawn
from one shipped corpus document of its kind (corpus/documents/*.jsonl): its text, plus with
probability 1/2 one sentence of another corpus document of the same kind, plus a reference number (so
every id and every content hash is unique); its metadata is the source's. Its vector mixes the real
USE embeddings of 2-4 sentences (of the source, and the added sentence when there is one) with random
weights, adds Gaussian noise of norm ``--noise`` and renormalises. Its tags are the real tags of the
source document (the real tagger runs once per corpus document; the added text comes after the source
text, so tag offsets stay valid); needs are ``{}``. Sentence embeddings, source embeddings and tags are
cached under ``<work-dir>/cache``, the data set under ``<work-dir>/data-<N>-s<seed>``; both are reused
while the model, the corpus, the taxonomy and the extraction code are unchanged (``--regenerate``
forces it). Generation streams in chunks of 5,000: vectors go to memory-mapped ``<kind>.npy`` files and
to a DocumentStore (``store.sqlite``: upsert, put_analyses, attach_concepts), analyses keyed by
``model_fingerprint(models/use-multilingual-v3)`` and the version ours keys them by
(``nlp_service.services.analysis_version``: the taxonomy's full_version plus a hash of the extraction
code). 200 held-out synthetic request vectors are the recall queries.

**A. naive** (bench/naive_service.py): encode + faiss ``IndexFlatIP`` over every vector of the other
kind, gunicorn with 2 sync workers, vectors read from the .npy files into each worker.
**B. ours**: ``nlp-service rebuild --from-store --index-dir DIR`` publishes a snapshot from a copy of the
store, then ``nlp-service serve --index-dir DIR``, both with ``NLP_SERVICE_STORE_PATH``. Only
:func:`ours_commands` and :func:`ours_settings` need adapting if the CLI changes. If the CLI or the
settings lack what this needs, ours is reported as pending with the reason, and our FaissBackend is
measured directly instead (built in process from the same vectors; ``--direct-backend``).

Measured, side by side:
- ``POST /v1/match`` requests/s and p50/p90/p99 from ``--clients`` threads sending the corpus's real
  request texts: both servers run, and are loaded in ``--rounds`` alternating rounds (A B, B A, ...) that
  share ``--duration`` s per side, after ``--warmup`` s, so that load from other processes on this shared
  machine falls on both alike (the CPU other processes used is recorded per round);
- one match in process (naive: encode + flat search; ours: ``Services(...).matcher.match`` on the
  published index), p50/p90, over texts seen for the first time and over the same texts again;
- memory per worker after the load (/proc/<pid>/smaps_rollup: Rss, Pss, Private, Shared);
- seconds from the start until /v1/health first answers 200 and until every worker has answered;
- recall@10 against exact numpy brute force, and the summed exact score of the 10 returned over the
  exact top 10, through the naive flat index and through the FaissBackend of ours' published snapshot
  (plus a sweep of its nprobe or efSearch);
- for ours: publish time with every analysis cached, again after changing ``--change-share`` of the
  texts (only those are tagged and embedded again), and a full rebuild from scratch (empty analysis
  cache, new index folder; only up to ``--scratch-max-docs`` documents, as it tags and embeds them all),
  each with the number of documents the rebuild analysed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hashlib
import http.client
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and faiss are imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

KINDS = ("volunteer", "request")
ID_PREFIX = {"volunteer": "svol-", "request": "sreq-"}
MODEL_DIR = Path("models/use-multilingual-v3")
TAXONOMY_DIR = Path("corpus/taxonomy")
CORPUS_DIR = Path("corpus/documents")
REFERENCE_FORMAT = "live-index-reference/1"
GENERATOR_FORMAT = "live-index-data/1"
CHUNK = 5_000  # documents synthesised at a time
STORE_BATCH = 1_000  # documents per upsert / put_analyses transaction
RECALL_QUERIES = 200
TOP_K = 10
CHANGE_SUFFIX = {"en": " Update: schedule and scope confirmed again this month.", "zh": "（更新：本月已再次确认时间和范围。）"}
ACCESS_FORMAT = "ACCESS %(p)s %(m)s %(U)s %(s)s"
ACCESS_LINE = re.compile(r"ACCESS <(\d+)> (\S+) (\S+) (\d{3})")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.])\s+")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def log(message: str) -> None:
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentiles(ms: Sequence[float]) -> dict[str, Any]:
    """Median, p90 and p99 (nearest rank, as bench/run.py) in milliseconds."""
    if not ms:
        return {"n": 0}
    ordered = sorted(ms)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(math.ceil(q * len(ordered))) - 1)], 2)

    return {"p50_ms": round(statistics.median(ordered), 2), "p90_ms": rank(0.90), "p99_ms": rank(0.99),
            "n": len(ordered)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_zh(text: str) -> bool:
    return len(_HAN.findall(text)) * 2 > len(text.split())


# ------------------------------------------------------------------------------------ reference data


@dataclasses.dataclass
class Reference:
    """The shipped corpus with what synthesis needs: sentence vectors, source vectors, real tags."""

    documents: list  # nlp_service.corpus.Document
    sentences: list[str]
    sentence_doc: np.ndarray  # corpus document index of each sentence
    sentence_vectors: np.ndarray  # (S, d) real USE embeddings, L2-normalised
    document_vectors: np.ndarray  # (D, d) real embeddings of each document's title + text
    tags: list[list[dict[str, Any]]]  # real tags of each corpus document (Tag.to_dict rows)
    model_fingerprint: str
    taxonomy_version: str

    @property
    def dimension(self) -> int:
        return int(self.sentence_vectors.shape[1])

    def __post_init__(self) -> None:
        order = np.argsort(self.sentence_doc, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            raise ValueError("sentences must be grouped by document")
        counts = np.bincount(self.sentence_doc, minlength=len(self.documents))
        if (counts == 0).any():
            raise ValueError("every corpus document needs at least one sentence")
        self.sentence_count = counts
        self.sentence_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.kind_docs = {kind: np.array([i for i, d in enumerate(self.documents) if d.kind == kind]) for kind in KINDS}


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and len(part.strip()) >= 8]


def service_analysis_version() -> str:
    """The version ours keys cached analyses by, besides the model: the taxonomy's full_version plus a hash of
    the extraction code and data (nlp_service.services.analysis_version)."""
    from nlp_service.extract.taxonomy import Taxonomy
    from nlp_service.services import analysis_version
    from nlp_service.settings import load_settings

    return analysis_version(Taxonomy.from_dir(TAXONOMY_DIR), load_settings())


def load_reference(cache_dir: Path) -> Reference:
    """Embed the corpus sentences and tag the corpus documents once; cached by model, taxonomy, corpus."""
    from nlp_service.corpus import corpus_hash, load_corpus
    from nlp_service.store.documents import model_fingerprint

    documents = load_corpus(CORPUS_DIR)
    fingerprint = model_fingerprint(MODEL_DIR)
    taxonomy_version = service_analysis_version()
    key = hashlib.sha256(f"{REFERENCE_FORMAT}|{fingerprint}|{taxonomy_version}|{corpus_hash(documents)}".encode())
    stem = cache_dir / f"reference-{key.hexdigest()[:16]}"
    if stem.with_suffix(".json").is_file() and stem.with_suffix(".npz").is_file():
        raw = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as arrays:
            log(f"reference data from cache {stem}")
            cached = Reference(documents, raw["sentences"], arrays["sentence_doc"], arrays["sentence_vectors"],
                               arrays["document_vectors"], raw["tags"], fingerprint, taxonomy_version)
        cached.key = key.hexdigest()[:16]
        return cached
    log("reference data: loading the services to tag the corpus and embed its sentences (once)")
    from nlp_service.index.live import embedding_text as document_embedding_text
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    services = Services(load_settings())
    if services.analysis_version != taxonomy_version:
        raise RuntimeError("the services load another taxonomy or extraction version than corpus/taxonomy")
    sentences: list[str] = []
    sentence_doc: list[int] = []
    for n, document in enumerate(documents):
        title = document.meta.get("title")
        parts = ([title.strip()] if isinstance(title, str) and title.strip() else []) + split_sentences(document.text)
        sentences.extend(parts or [document.text])
        sentence_doc.extend([n] * len(parts or [document.text]))
    start = time.perf_counter()
    sentence_vectors = services.embedder.embed(sentences)
    document_vectors = services.embedder.embed([document_embedding_text(d) for d in documents])
    tagged = [services.tagger.tag(d.text, d.kind, meta=d.meta) for d in documents]
    tags = [[t.to_dict() for t in result.tags] for result in tagged]
    log(f"embedded {len(sentences)} sentences and tagged {len(documents)} documents in "
        f"{time.perf_counter() - start:.1f} s")
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(stem.with_suffix(".npz"), sentence_doc=np.array(sentence_doc, dtype=np.int32),
             sentence_vectors=sentence_vectors.astype(np.float32), document_vectors=document_vectors.astype(np.float32))
    stem.with_suffix(".json").write_text(json.dumps({"format": REFERENCE_FORMAT, "model_fingerprint": fingerprint,
                                                     "taxonomy_version": taxonomy_version, "sentences": sentences,
                                                     "tags": tags}, ensure_ascii=False), encoding="utf-8")
    fresh = Reference(documents, sentences, np.array(sentence_doc, dtype=np.int32), sentence_vectors.astype(np.float32),
                    document_vectors.astype(np.float32), tags, fingerprint, taxonomy_version)
    fresh.key = key.hexdigest()[:16]
    return fresh


# ------------------------------------------------------------------------------------------ synthesis


@dataclasses.dataclass
class Chunk:
    ids: list[str]
    sources: np.ndarray  # corpus document index of each synthetic document
    texts: list[str]
    vectors: np.ndarray  # (c, d) float32, L2-normalised


def synthesise(rng: np.random.Generator, ref: Reference, kind: str, first: int, count: int, noise: float,
               id_prefix: str | None = None) -> Chunk:
    pool = ref.kind_docs[kind]
    sources = pool[rng.integers(len(pool), size=count)]
    donors = pool[rng.integers(len(pool), size=count)]
    mixing = rng.random(count) < 0.5
    mixed_sentence = ref.sentence_start[donors] + (rng.random(count) * ref.sentence_count[donors]).astype(np.int64)
    slots = rng.integers(2, 5, size=count)  # 2-4 sentences per document
    picks = ref.sentence_start[sources][:, None] + (
        rng.random((count, 4)) * ref.sentence_count[sources][:, None]).astype(np.int64)
    picks[mixing, 0] = mixed_sentence[mixing]
    weights = rng.uniform(0.5, 1.5, size=(count, 4)).astype(np.float32) * (np.arange(4)[None, :] < slots[:, None])
    vectors = np.einsum("cj,cjd->cd", weights, ref.sentence_vectors[picks])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors += (noise / math.sqrt(ref.dimension)) * rng.standard_normal(vectors.shape, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    prefix = id_prefix or ID_PREFIX[kind]
    ids, texts = [], []
    for row in range(count):
        number = first + row
        source = ref.documents[int(sources[row])]
        text = source.text
        if mixing[row]:
            text += " " + ref.sentences[int(mixed_sentence[row])]
        text += f"（编号 {number}）" if is_zh(source.text) else f" (ref. {number})"
        ids.append(f"{prefix}{number:07d}")
        texts.append(text)
    return Chunk(ids, sources, texts, np.ascontiguousarray(vectors, dtype=np.float32))


def concepts_of(tags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted({(t["concept_id"], t.get("role") or "offered") for t in tags if t.get("concept_id")})


def generate_data(n: int, ref: Reference, data_dir: Path, seed: int, noise: float) -> dict[str, Any]:
    """Stream N synthetic documents into store.sqlite and <kind>.npy; return the data manifest."""
    from nlp_service.corpus import Document
    from nlp_service.store.documents import Analysis, AnalysisKey, DocumentStore, content_hash

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    counts = {"volunteer": n // 2, "request": n - n // 2}
    timings = {"synthesise_s": 0.0, "npy_s": 0.0, "upsert_s": 0.0, "put_analyses_s": 0.0, "attach_concepts_s": 0.0}
    realism: list[float] = []
    started = time.perf_counter()
    store = DocumentStore.open(data_dir / "store.sqlite")
    try:
        for k, kind in enumerate(KINDS):
            rng = np.random.default_rng([seed, k])
            vectors = np.lib.format.open_memmap(data_dir / f"{kind}.npy", mode="w+", dtype=np.float32,
                                                shape=(counts[kind], ref.dimension))
            ids = np.empty(counts[kind], dtype=f"<U{len(ID_PREFIX[kind]) + 7}")
            sources = np.empty(counts[kind], dtype=np.int32)
            for first in range(0, counts[kind], CHUNK):
                t0 = time.perf_counter()
                chunk = synthesise(rng, ref, kind, first, min(CHUNK, counts[kind] - first), noise)
                t1 = time.perf_counter()
                vectors[first:first + len(chunk.ids)] = chunk.vectors
                ids[first:first + len(chunk.ids)] = chunk.ids
                sources[first:first + len(chunk.ids)] = chunk.sources
                if len(realism) < 2_000:
                    realism.extend(np.einsum("cd,cd->c", chunk.vectors[:500],
                                             ref.document_vectors[chunk.sources[:500]]).tolist())
                t2 = time.perf_counter()
                for b in range(0, len(chunk.ids), STORE_BATCH):
                    rows = range(b, min(b + STORE_BATCH, len(chunk.ids)))
                    t2b = time.perf_counter()
                    documents = [Document(chunk.ids[r], kind, chunk.texts[r],
                                          dict(ref.documents[int(chunk.sources[r])].meta)) for r in rows]
                    t3 = time.perf_counter()
                    store.upsert(documents)
                    t4 = time.perf_counter()
                    hashes = [content_hash(d) for d in documents]
                    store.put_analyses([
                        (AnalysisKey(h, ref.model_fingerprint, ref.taxonomy_version),
                         Analysis(ref.tags[int(chunk.sources[r])], {}, chunk.vectors[r]))
                        for h, r in zip(hashes, rows)])
                    t5 = time.perf_counter()
                    for d, h, r in zip(documents, hashes, rows):
                        store.attach_concepts(d.id, h, concepts_of(ref.tags[int(chunk.sources[r])]))
                    t6 = time.perf_counter()
                    timings["synthesise_s"] += t3 - t2b  # Document objects
                    timings["upsert_s"] += t4 - t3
                    timings["put_analyses_s"] += t5 - t4
                    timings["attach_concepts_s"] += t6 - t5
                timings["synthesise_s"] += t1 - t0
                timings["npy_s"] += t2 - t1
                done = first + len(chunk.ids)
                if done % 50_000 < CHUNK or done == counts[kind]:
                    log(f"  {kind}: {done:,}/{counts[kind]:,} ({time.perf_counter() - started:.0f} s)")
            vectors.flush()
            del vectors
            np.save(data_dir / f"{kind}.ids.npy", ids, allow_pickle=False)
            np.save(data_dir / f"{kind}.sources.npy", sources, allow_pickle=False)
        queries = synthesise(np.random.default_rng([seed, 99]), ref, "request", 0, RECALL_QUERIES, noise, "qreq-")
        np.save(data_dir / "queries.npy", queries.vectors, allow_pickle=False)
    finally:
        store.close()
    total = time.perf_counter() - started
    sizes = {p.name: p.stat().st_size for p in sorted(data_dir.iterdir())}
    manifest = {
        "format": GENERATOR_FORMAT, "docs": n, "by_kind": counts, "seed": seed, "noise": noise, "reference_key": ref.key,
        "dimension": ref.dimension, "model_fingerprint": ref.model_fingerprint,
        "taxonomy_version": ref.taxonomy_version, "complete": True,
        "generation": {"total_s": round(total, 1), "docs_per_s": round(n / total, 1),
                       **{k: round(v, 1) for k, v in timings.items()}},
        "sizes_mb": {name: round(size / 2**20, 1) for name, size in sizes.items()},
        "realism": {"median_cos_to_source_text_embedding": round(float(np.median(realism)), 3),
                    "p10_cos_to_source_text_embedding": round(float(np.percentile(realism, 10)), 3)},
    }
    (data_dir / "data.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def ensure_data(n: int, ref: Reference, work_dir: Path, seed: int, noise: float, regenerate: bool) -> tuple[Path, dict]:
    data_dir = work_dir / f"data-{n}-s{seed}"
    manifest_path = data_dir / "data.json"
    if manifest_path.is_file() and not regenerate:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        wanted = {"format": GENERATOR_FORMAT, "docs": n, "seed": seed, "noise": noise, "reference_key": ref.key,
                  "model_fingerprint": ref.model_fingerprint, "taxonomy_version": ref.taxonomy_version, "complete": True}
        if all(manifest.get(k) == v for k, v in wanted.items()):
            log(f"reusing generated data {data_dir} (generated in {manifest['generation']['total_s']} s)")
            return data_dir, {**manifest, "reused": True}
    log(f"generating {n:,} documents into {data_dir}")
    return data_dir, {**generate_data(n, ref, data_dir, seed, noise), "reused": False}


def load_vectors(data_dir: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(memory-mapped vectors, ids) of one kind."""
    return np.load(data_dir / f"{kind}.npy", mmap_mode="r"), np.load(data_dir / f"{kind}.ids.npy")


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers and scores of the exact top k per query (numpy, blocks of the memory-mapped matrix)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), block):
        scores = queries @ np.asarray(vectors[start:start + block]).T
        part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k] if scores.shape[1] > k else \
            np.tile(np.arange(scores.shape[1]), (len(queries), 1))
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        merged_rows = np.concatenate([best_rows, part + start], axis=1)
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
    return best_rows, best_scores


def neighbour_similarity(ref: Reference, scores: np.ndarray) -> dict[str, Any]:
    """How close the exact neighbours are: synthetic queries at N vs real requests among the real volunteers."""
    real = ref.document_vectors[ref.kind_docs["request"]] @ ref.document_vectors[ref.kind_docs["volunteer"]].T
    real.sort(axis=1)
    return {"corpus_volunteers": int(real.shape[1]),
            "synthetic_top1_cos_median": round(float(np.median(scores[:, 0])), 3),
            f"synthetic_top{TOP_K}_cos_median": round(float(np.median(scores[:, -1])), 3),
            "corpus_requests_vs_corpus_volunteers_top1_cos_median": round(float(np.median(real[:, -1])), 3),
            f"corpus_requests_vs_corpus_volunteers_top{TOP_K}_cos_median": round(float(np.median(real[:, -TOP_K])), 3)}


@dataclasses.dataclass
class Truth:
    """The exact top k of every query (numpy brute force) and a way to score any returned id exactly."""

    ids: list[set[str]]
    scores: np.ndarray  # (queries, k), descending
    vectors: np.ndarray  # memory-mapped volunteer vectors
    row_of: dict[str, int]

    def exact_scores(self, query: np.ndarray, found: list[str]) -> np.ndarray:
        rows = sorted(self.row_of[f] for f in found if f in self.row_of)
        return np.asarray(self.vectors[rows]) @ query if rows else np.zeros(0, dtype=np.float32)


def recall_at_k(search: Callable[[np.ndarray], list[str]], queries: np.ndarray, truth: Truth,
                k: int = TOP_K) -> dict[str, Any]:
    """recall@k against the exact top k, and how much worse the misses are: the summed exact score of
    what was returned over the summed exact top k, and the share returned within 0.01 of the exact k-th score."""
    recalls, ratios, close, ms = [], [], [], []
    for n, query in enumerate(queries):
        start = time.perf_counter()
        found = search(query)[:k]
        ms.append((time.perf_counter() - start) * 1000)
        recalls.append(len(set(found) & truth.ids[n]) / k)
        got = truth.exact_scores(query, found)
        ratios.append(float(got.sum() / truth.scores[n].sum()))
        close.append(float(np.count_nonzero(got >= truth.scores[n, -1] - 0.01)) / k)
    return {f"recall_at_{k}": round(float(np.mean(recalls)), 4), "min_recall": round(float(np.min(recalls)), 2),
            "score_sum_vs_exact": round(float(np.mean(ratios)), 4),
            "share_within_0.01_of_exact_kth": round(float(np.mean(close)), 4),
            "queries": len(recalls), "search": percentiles(ms)}


def search_breadth_sweep(backend_dir: Path, kind: str, queries: np.ndarray, truth: Truth) -> list[dict[str, Any]] | None:
    """recall@k and latency of the published backend (FaissBackend.load, mmap) at several nprobe (IVF)
    or efSearch (HNSW) values."""
    from nlp_service.index.backends import FaissBackend

    backend = FaissBackend.load(backend_dir, mmap=True, verify=False)
    index_type = backend.index_type(kind)
    if index_type == "flat":
        return None
    name, values = ("nprobe", (16, 32, 48, 64, 96)) if index_type == "ivf" else ("ef_search", (64, 128, 256, 512, 1024))
    out = []
    for value in values:
        backend.set_search_breadth(**{name: value})
        out.append({"index_type": index_type, name: value,
                    **recall_at_k(lambda q: [h.id for h in backend.search(q, kind, TOP_K)], queries, truth)})
    return out


# ------------------------------------------------------------------------------------------- servers


class Server:
    """A gunicorn master started in its own process group; the whole group is killed on exit."""

    _running: list["Server"] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def __enter__(self) -> "Server":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        Server._running.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)  # the group this script created (start_new_session)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                # the master may be gone while a worker lingers: make sure the group is empty
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None
        self._log.close()
        if self in Server._running:
            Server._running.remove(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def answered_pids(self) -> set[int]:
        """Worker pids that answered /v1/health with 200 (from the access log, which names the pid)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return {int(m.group(1)) for m in ACCESS_LINE.finditer(text) if m.group(3) == "/v1/health" and m.group(4) == "200"}

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        try:
            raw = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            return sorted(int(p) for p in raw.split())
        except OSError:
            pids = []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
            return sorted(pids)


def _stop_all_servers(signum: int, _frame: object) -> None:
    for server in list(Server._running):
        server.stop()
    raise SystemExit(128 + signum)


def http_call(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 120) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_ready(server: Server, port: int, workers: int, timeout: float) -> dict[str, Any]:
    """Seconds from the start until /v1/health first answers 200, and until every worker has answered."""
    assert server.proc is not None
    deadline = server.started + timeout
    first = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        while time.perf_counter() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
            statuses = list(pool.map(lambda _: _health(port), range(workers if first is not None else 1)))
            now = time.perf_counter() - server.started
            if first is None and 200 in statuses:
                first = now
            if first is not None:
                time.sleep(0.2)  # the access log line is written after the response
                if len(server.answered_pids() & set(server.worker_pids())) >= workers:
                    return {"first_health_200_s": round(first, 2), "all_workers_answered_s": round(now, 2)}
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}")


def _health(port: int) -> int | None:
    try:
        return http_call(port, "GET", "/v1/health", timeout=600)
    except OSError:
        return None


_UNIQUE = itertools.count()


def unique_body(texts: list[str], i: int) -> bytes:
    """A request text of the corpus made unique by a reference line (never seen before by any cache)."""
    n = next(_UNIQUE)
    text = f"{texts[i % len(texts)]}\n(ref q{n:07d}-{os.getpid()})"
    return json.dumps({"text": text, "kind": "request", "top_k": TOP_K}, ensure_ascii=False).encode("utf-8")


def run_load(port: int, bodies: list[bytes] | Callable[[int], bytes], clients: int, warmup: float, duration: float,
             max_requests: int = 500_000) -> tuple[dict[str, Any], list[float]]:
    """``clients`` threads POST /v1/match back to back: ``warmup`` s discarded, then ``duration`` s measured.
    ``bodies``: a list cycled through, or a function of the request number. Returns the summary and the
    latencies (ms) of the requests answered 200."""

    def client(offset: int, deadline: float, out: list[tuple[float, Any]]) -> None:
        i = offset
        while time.perf_counter() < deadline and len(out) < max_requests:
            body = bodies(i) if callable(bodies) else bodies[i % len(bodies)]
            i += clients
            start = time.perf_counter()
            try:
                status: Any = http_call(port, "POST", "/v1/match", body)
            except OSError as exc:
                status = type(exc).__name__
            out.append(((time.perf_counter() - start) * 1000, status))

    def phase(seconds: float) -> tuple[list[tuple[float, Any]], float]:
        results: list[list[tuple[float, Any]]] = [[] for _ in range(clients)]
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c, start + seconds, results[c]), daemon=True)
                   for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 300)
        return [r for rs in results for r in rs], time.perf_counter() - start

    if warmup > 0:
        phase(warmup)
    results, elapsed = phase(duration)
    ok = [ms for ms, status in results if status == 200]
    errors: dict[str, int] = {}
    for _, status in results:
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
    return ({"warmup_s": warmup, "duration_s": round(elapsed, 2), "ok": len(ok),
             "requests_per_s": round(len(ok) / elapsed, 1), **percentiles(ok), "errors": errors}, ok)


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_snapshot(servers: Sequence["Server"]) -> tuple[float, int, int]:
    """(time, busy ticks of the whole machine, ticks of this script and of its servers' processes)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    busy = sum(values) - values[3] - values[4]  # everything but idle and iowait (steal counts as taken)
    ours = _proc_ticks(os.getpid())
    for server in servers:
        if server.proc is not None:
            ours += sum(_proc_ticks(pid) for pid in [server.proc.pid, *server.worker_pids()])
    return time.perf_counter(), busy, ours


def background_cores(before: tuple[float, int, int], after: tuple[float, int, int]) -> float:
    """CPU cores other processes on the machine kept busy between two snapshots (noise indicator)."""
    seconds = after[0] - before[0]
    other = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, other / os.sysconf("SC_CLK_TCK") / seconds), 2) if seconds > 0 else 0.0


def worker_memory(server: Server) -> dict[str, Any]:
    """smaps_rollup of each worker, in MB: Rss, Pss, Private (Clean+Dirty), Shared (Clean+Dirty)."""
    workers = []
    for pid in server.worker_pids():
        try:
            raw = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        kb = {line.split(":")[0]: int(line.split()[1]) for line in raw.splitlines()[1:] if line.split()[-1] == "kB"}
        workers.append({
            "pid": pid,
            "rss_mb": round(kb.get("Rss", 0) / 1024, 1),
            "pss_mb": round(kb.get("Pss", 0) / 1024, 1),
            "private_mb": round((kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024, 1),
            "shared_mb": round((kb.get("Shared_Clean", 0) + kb.get("Shared_Dirty", 0)) / 1024, 1),
            "pss_file_mb": round(kb.get("Pss_File", 0) / 1024, 1),
            "pss_anon_mb": round(kb.get("Pss_Anon", 0) / 1024, 1),
        })
    keys = ("rss_mb", "pss_mb", "private_mb", "shared_mb", "pss_file_mb", "pss_anon_mb")
    median = {k: round(statistics.median(w[k] for w in workers), 1) for k in keys} if workers else {}
    return {"workers": workers, "median": median}


@dataclasses.dataclass
class Side:
    """One service under test: how to start it and what was measured."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    result: dict[str, Any]


def measure_http(sides: list[Side], run_dir: Path, bodies: list[bytes], args: argparse.Namespace,
                 texts: list[str] | None = None) -> None:
    """Start each server in turn (ready time), then load them in alternating rounds (A B, B A, A B...), so
    that background load on this shared machine falls on both alike; then read their workers' memory.
    Two loads: the corpus's request texts cycled (``http_match``: a text comes back every ~150 requests,
    as a platform re-asks for a request's matches) and, with ``texts``, every request a text never sent
    before (``http_match_unique``: no cache of any kind can answer it)."""
    live: list[tuple[Side, Server]] = []
    try:
        for side in sides:
            env = {**side.env, "GUNICORN_CMD_ARGS": f"--access-logformat '{ACCESS_FORMAT}'"}
            server = Server(side.name, side.argv, env, run_dir / f"{side.name}-server.log")
            server.__enter__()
            log(f"{side.name}: started gunicorn (pid {server.proc.pid}) on 127.0.0.1:{side.port}")
            try:
                side.result["ready"] = wait_ready(server, side.port, args.workers, args.ready_timeout)
            except Exception as exc:
                server.stop()
                side.result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
                log(f"{side.name}: failed to start: {exc}")
                continue
            log(f"{side.name}: ready {side.result['ready']}")
            live.append((side, server))
        loads: list[tuple[str, Any]] = [("http_match", bodies)]
        if texts:
            loads.append(("http_match_unique", lambda i: unique_body(texts, i)))
        for load_name, load_bodies in loads:
            measure_load(live, load_name, load_bodies, args)
        for side, server in live:
            side.result["memory"] = worker_memory(server)
            side.result["server_log"] = str(server.log_path)
    finally:
        for _, server in live:
            server.stop()


def measure_load(live: list[tuple[Side, "Server"]], load_name: str, bodies: Any, args: argparse.Namespace) -> None:
    """One load, alternating rounds over the live servers; the summary goes to ``side.result[load_name]``."""
    rounds: dict[str, list[dict[str, Any]]] = {side.name: [] for side, _ in live}
    latencies: dict[str, list[float]] = {side.name: [] for side, _ in live}
    servers = [server for _, server in live]
    per_round = args.duration / args.rounds
    for r in range(args.rounds):
        for side, server in (live if r % 2 == 0 else live[::-1]):
            before = cpu_snapshot(servers)
            summary, ok = run_load(side.port, bodies, args.clients, args.warmup if r == 0 else min(args.warmup, 1.0),
                                   per_round)
            summary["background_cpu_cores"] = background_cores(before, cpu_snapshot(servers))
            rounds[side.name].append(summary)
            latencies[side.name].extend(ok)
            log(f"{side.name} {load_name} round {r + 1}/{args.rounds}: {summary['requests_per_s']} requests/s, "
                f"p50 {summary.get('p50_ms')} ms, background {summary['background_cpu_cores']} cores")
    for side, server in live:
        done = rounds[side.name]
        elapsed = sum(x["duration_s"] for x in done)
        errors: dict[str, int] = {}
        for x in done:
            for key, count in x["errors"].items():
                errors[key] = errors.get(key, 0) + count
        side.result[load_name] = {
            "clients": args.clients, "rounds": len(done), "measured_s": round(elapsed, 1),
            "requests_per_s": round(len(latencies[side.name]) / elapsed, 1) if elapsed else None,
            "requests_per_s_by_round": [x["requests_per_s"] for x in done],
            **percentiles(latencies[side.name]), "errors": errors,
            "background_cpu_cores_by_round": [x["background_cpu_cores"] for x in done],
        }


def measure_in_process(matchers: dict[str, Callable[[str], Any]], texts: list[str], repeat: int,
                       rounds: int) -> dict[str, dict[str, Any]]:
    """Time one match at a time, matchers alternating by blocks: a first pass over ``repeat`` texts (each
    seen for the first time: cold per-document caches), a second pass over the same texts, and a third over
    the same texts each made new by a reference line (a text never seen, its candidates already parsed:
    a new query in steady state)."""
    timed = texts[:min(repeat, max(1, len(texts) - 3))]
    for match in matchers.values():
        for text in texts[-3:]:
            match(text)  # load lazily built parts; these texts are not timed
    names = list(matchers)
    block = max(1, len(timed) // rounds)
    out: dict[str, dict[str, Any]] = {}
    for label in ("first_time", "repeated", "new_text_warm_documents"):
        ms: dict[str, list[float]] = {name: [] for name in names}
        for b, first in enumerate(range(0, len(timed), block)):
            for name in (names if b % 2 == 0 else names[::-1]):
                for n, text in enumerate(timed[first:first + block]):
                    if label == "new_text_warm_documents":
                        text = f"{text}\n(ref p{first + n:05d}-{name})"
                    start = time.perf_counter()
                    matchers[name](text)
                    ms[name].append((time.perf_counter() - start) * 1000)
        for name in names:
            out.setdefault(name, {})[label] = percentiles(ms[name])
    return out


# ---------------------------------------------------------------------------------------------- naive


def naive_side(data_dir: Path, workers: int) -> Side:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NAIVE_DATA_DIR": str(data_dir), "NAIVE_MODEL_DIR": str(ROOT / MODEL_DIR)}
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "1",
            "--bind", f"127.0.0.1:{port}", "--timeout", "600", "--access-logfile", "-",
            "--pythonpath", str(BENCH), "naive_service:create_app()"]
    return Side("naive", argv, env, port, {"served_by": f"gunicorn, {workers} sync workers, bench/naive_service.py"})


# ----------------------------------------------------------------------------------------------- ours


@dataclasses.dataclass(frozen=True)
class OursCommands:
    rebuild: list[str]
    serve: list[str]
    env: dict[str, str]


def ours_capabilities() -> dict[str, Any]:
    """What our CLI and settings support today (the harness runs ours only when nothing is missing)."""
    from nlp_service.settings import Settings

    cli = str(ROOT / ".venv" / "bin" / "nlp-service")
    rebuild_help = subprocess.run([cli, "rebuild", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    serve_help = subprocess.run([cli, "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    has = {
        "settings.store_path (NLP_SERVICE_STORE_PATH)": "store_path" in {f.name for f in dataclasses.fields(Settings)},
        "nlp-service rebuild --from-store": "--from-store" in rebuild_help.stdout,
        "nlp-service serve --index-dir": "--index-dir" in serve_help.stdout,
    }
    return {"supported": has, "missing": [name for name, ok in has.items() if not ok]}


def ours_commands(port: int, index_dir: Path, store_path: Path, workers: int = 2) -> OursCommands:
    """THE place to adapt if the CLI changes: how to publish from the store and how to serve."""
    cli = str(ROOT / ".venv" / "bin" / "nlp-service")
    env = {**os.environ, "NLP_SERVICE_STORE_PATH": str(store_path), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rebuild = [cli, "rebuild", "--from-store", "--index-dir", str(index_dir)]
    serve = [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--index-dir", str(index_dir)]
    return OursCommands(rebuild, serve, env)


def ours_settings(index_dir: Path, store_path: Path):
    """Settings for the in-process measurement of ours (same index and store as the server)."""
    from nlp_service.settings import Settings, load_settings

    overrides: dict[str, object] = {"index_dir": index_dir}
    if "store_path" in {f.name for f in dataclasses.fields(Settings)}:
        overrides["store_path"] = store_path
    return load_settings(**overrides)


def published_searcher(index: Any, index_dir: Path) -> tuple[Callable[[np.ndarray], list[str]], str, Path | None]:
    """Search the volunteers of the published snapshot: its FaissBackend directory when it has one, else
    whatever the loaded index searches with (what Matcher calls)."""
    from nlp_service.index.backends import FORMAT as BACKEND_FORMAT, FaissBackend

    version = getattr(index, "version", None)
    roots = [index_dir / "versions" / str(version), Path(getattr(index, "path", index_dir))]
    for root in roots:
        if not root.is_dir():
            continue
        for manifest in sorted(root.rglob("manifest.json")):
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("format") != BACKEND_FORMAT:
                    continue
            except (OSError, ValueError):
                continue
            backend = FaissBackend.load(manifest.parent, mmap=True)
            if "volunteer" in backend.kinds:
                return (lambda q: [h.id for h in backend.search(q, "volunteer", TOP_K)],
                        f"FaissBackend.search on the published {manifest.parent.relative_to(index_dir)} "
                        f"({backend.index_type('volunteer')}, mmap, nprobe {backend.tuning.nprobe}, "
                        f"efSearch {backend.tuning.ef_search})",
                        manifest.parent)
    vectors = getattr(index, "vectors", None)
    if isinstance(vectors, dict) and hasattr(vectors.get("volunteer"), "search"):
        target = vectors["volunteer"]
        return (lambda q: [h.id for h in target.search(q[None, :], TOP_K)[0]],
                f"{type(target).__name__}.search of the loaded index", None)
    if hasattr(vectors, "search"):
        return (lambda q: [h.id for h in vectors.search(q, "volunteer", TOP_K)],
                f"{type(vectors).__name__}.search of the loaded index", None)
    raise RuntimeError(f"cannot find how to search the published index in {index_dir}")


def timed_command(argv: list[str], env: dict[str, str], log_path: Path, timeout: float) -> float:
    start = time.perf_counter()
    with open(log_path, "wb") as handle:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    elapsed = time.perf_counter() - start
    if code != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(argv[1:3])} exited with {code} after {elapsed:.0f} s:\n{tail}")
    return elapsed


def analyses_written_since(store_path: Path, since: str) -> int:
    """Cached analyses the store got (or had replaced) after ``since``: what a rebuild analysed."""
    with contextlib.closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM analyses WHERE created_at > ?", (since,)).fetchone()[0])


def timed_rebuild(commands: OursCommands, store_path: Path, log_path: Path, timeout: float,
                  expected_version: str | None) -> dict[str, Any]:
    """Run ours' rebuild; report its time and how many documents it analysed (tagged and embedded)."""
    if expected_version is not None and service_analysis_version() != expected_version:
        raise RuntimeError(
            f"ours now keys analyses by {service_analysis_version()!r}, the data was generated for {expected_version!r} "
            "(the taxonomy or extraction code changed meanwhile): a rebuild would analyse every document again. "
            "Run the benchmark again; it regenerates the data")
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    seconds = timed_command(commands.rebuild, commands.env, log_path, timeout)
    return {"s": round(seconds, 1), "analysed": analyses_written_since(store_path, since), "log": str(log_path)}


def change_documents(store_path: Path, counts: dict[str, int], share: float, seed: int) -> dict[str, Any]:
    """Change the text of ``share`` of the documents of each kind (a new content hash each)."""
    from nlp_service.corpus import Document
    from nlp_service.store.documents import DocumentStore

    rng = np.random.default_rng([seed, 7])
    ids = [f"{ID_PREFIX[kind]}{int(i):07d}" for kind in KINDS
           for i in rng.choice(counts[kind], size=max(1, round(share * counts[kind])), replace=False)]
    store = DocumentStore.open(store_path)
    try:
        start = time.perf_counter()
        changed = []
        for doc_id in ids:
            stored = store.get(doc_id)
            if stored is None:
                raise RuntimeError(f"document {doc_id} is missing from {store_path}")
            d = stored.document
            changed.append(Document(d.id, d.kind, d.text + CHANGE_SUFFIX["zh" if is_zh(d.text) else "en"], d.meta))
        statuses: dict[str, int] = {}
        for b in range(0, len(changed), STORE_BATCH):
            for result in store.upsert(changed[b:b + STORE_BATCH]):
                statuses[result.status] = statuses.get(result.status, 0) + 1
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    return {"documents": len(ids), "share": share, "statuses": statuses, "store_write_s": round(elapsed, 2)}


def ours_prepare(data_dir: Path, run_dir: Path, timeout: float, workers: int,
                 expected_version: str) -> tuple[Side, dict[str, Any]]:
    """Copy the store (ours may write to it; the cached one stays pristine) and publish from it."""
    store_path = run_dir / "ours-store.sqlite"
    start = time.perf_counter()
    shutil.copyfile(data_dir / "store.sqlite", store_path)
    copy_s = time.perf_counter() - start
    index_dir = run_dir / "ours-index"
    port = free_port()
    commands = ours_commands(port, index_dir, store_path, workers)
    result: dict[str, Any] = {
        "store_copy_s": round(copy_s, 1),
        "commands": {"rebuild": commands.rebuild[1:], "serve": commands.serve[1:],
                     "env": {"NLP_SERVICE_STORE_PATH": str(store_path)}},
        "paths": {"store": str(store_path), "index_dir": str(index_dir)},
    }
    log("ours: nlp-service rebuild --from-store (every analysis cached)")
    warm = timed_rebuild(commands, store_path, run_dir / "ours-rebuild-warm.log", timeout, expected_version)
    result["publish"] = {"full_warm_cache_s": warm["s"], "full_warm_cache_analysed": warm["analysed"]}
    log(f"ours: published in {result['publish']['full_warm_cache_s']} s")
    return Side("ours", commands.serve, commands.env, port, result), result


def ours_republish(result: dict[str, Any], data: dict[str, Any], run_dir: Path, timeout: float,
                   args: argparse.Namespace) -> None:
    """Change ``--change-share`` of the texts, publish again; then a full rebuild from scratch."""
    store_path, index_dir = Path(result["paths"]["store"]), Path(result["paths"]["index_dir"])
    commands = ours_commands(0, index_dir, store_path)
    publish = result["publish"]
    log(f"ours: change {args.change_share:.1%} of the texts, publish again")
    change = change_documents(store_path, data["by_kind"], args.change_share, args.seed)
    again = timed_rebuild(commands, store_path, run_dir / "ours-rebuild-changed.log", timeout, data["taxonomy_version"])
    change["republish_s"], change["republish_analysed"] = again["s"], again["analysed"]
    publish["after_change"] = change
    publish["republish_vs_warm_full"] = round(change["republish_s"] / publish["full_warm_cache_s"], 4)
    log(f"ours: republished after {change['documents']} changes in {change['republish_s']} s")
    if data["docs"] > args.scratch_max_docs:
        publish["from_scratch_s"] = None
        publish["from_scratch_note"] = (f"not run: N is above --scratch-max-docs {args.scratch_max_docs:,} (it tags and "
                                        f"embeds all {data['docs']:,} documents)")
        return
    log("ours: full rebuild from scratch (empty analysis cache, new index folder)")
    with contextlib.closing(sqlite3.connect(store_path)) as conn, conn:  # benchmark-only: forget every analysis
        conn.execute("DELETE FROM analyses")
        conn.execute("DELETE FROM document_concepts")
    scratch = ours_commands(0, run_dir / "ours-index-scratch", store_path)
    scratch_run = timed_rebuild(scratch, store_path, run_dir / "ours-rebuild-scratch.log", max(timeout, data["docs"] / 2),
                                None)
    publish["from_scratch_s"], publish["from_scratch_analysed"] = scratch_run["s"], scratch_run["analysed"]
    publish["republish_vs_scratch"] = round(change["republish_s"] / publish["from_scratch_s"], 4)
    log(f"ours: rebuilt from scratch in {publish['from_scratch_s']} s")


def direct_backend(data_dir: Path, queries: np.ndarray, truth: Truth,
                   attributes: Callable[[np.ndarray], list], run_dir: Path) -> dict[str, Any]:
    """Our FaissBackend built in process from the same vectors (what a published snapshot holds)."""
    import faiss

    from nlp_service.index.backends import FaissBackend

    faiss.omp_set_num_threads(1)
    vectors, ids = load_vectors(data_dir, "volunteer")
    sources = np.load(data_dir / "volunteer.sources.npy")
    backend = FaissBackend(vectors.shape[1], kinds=("volunteer",))
    start = time.perf_counter()
    with backend.bulk():
        for first in range(0, len(ids), 20_000):
            rows = slice(first, first + 20_000)
            backend.upsert("volunteer", [str(i) for i in ids[rows]], np.asarray(vectors[rows]), attributes(sources[rows]))
    build_s = time.perf_counter() - start
    log(f"direct backend: built {backend.stats('volunteer')} in {build_s:.0f} s")
    result: dict[str, Any] = {"build_s": round(build_s, 1), "stats": backend.stats("volunteer"),
                              "tuning": backend.tuning.to_dict()}
    result["recall"] = {**recall_at_k(lambda q: [h.id for h in backend.search(q, "volunteer", TOP_K)], queries, truth),
                        "searched_with": f"FaissBackend.search, in memory ({backend.index_type('volunteer')})"}
    save_dir = run_dir / "direct-backend"
    start = time.perf_counter()
    backend.save(save_dir)
    result["save_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    mapped = FaissBackend.load(save_dir, mmap=True)
    result["load_mmap_s"] = round(time.perf_counter() - start, 1)
    result["recall_mmap"] = {**recall_at_k(lambda q: [h.id for h in mapped.search(q, "volunteer", TOP_K)], queries,
                                           truth), "searched_with": "FaissBackend.load(mmap=True).search"}
    shutil.rmtree(save_dir, ignore_errors=True)
    return result

# --------------------------------------------------------------------------------------------- report


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def markdown(report: dict[str, Any]) -> str:
    naive, ours = report.get("naive", {}), report.get("ours", {})
    direct = report.get("ours_backend_direct") or {}
    data = report["data"]

    def side(result: dict[str, Any], *paths: tuple[str, ...]) -> str:
        if result.get("status") in ("pending", "failed", "skipped"):
            return result["status"]
        return " / ".join(cell(dig(result, *path)) for path in paths)

    def mem(result: dict[str, Any]) -> str:
        m = dig(result, "memory", "median")
        if not m:
            return result.get("status", "–")
        return " / ".join(f"{m[k]:,.0f}" for k in ("rss_mb", "pss_mb", "private_mb", "shared_mb"))

    h = dig(naive, "http_match") or dig(ours, "http_match") or {}
    load = (f"{report['args']['clients']} client threads, {h.get('rounds', report['args']['rounds'])} alternating rounds, "
            f"{h.get('measured_s', report['args']['duration'])} s measured")
    rows = [
        (f"`POST /v1/match` requests/s ({load})", side(naive, ("http_match", "requests_per_s")),
         side(ours, ("http_match", "requests_per_s"))),
        ("`POST /v1/match` latency p50 / p90 / p99, ms",
         side(naive, *[("http_match", k) for k in ("p50_ms", "p90_ms", "p99_ms")]),
         side(ours, *[("http_match", k) for k in ("p50_ms", "p90_ms", "p99_ms")])),
        ("`POST /v1/match` requests/s, every text new (no cache can answer)",
         side(naive, ("http_match_unique", "requests_per_s")), side(ours, ("http_match_unique", "requests_per_s"))),
        ("  latency p50 / p90 / p99, ms, every text new",
         side(naive, *[("http_match_unique", k) for k in ("p50_ms", "p90_ms", "p99_ms")]),
         side(ours, *[("http_match_unique", k) for k in ("p50_ms", "p90_ms", "p99_ms")])),
        ("one match in process, text seen before: p50 / p90, ms",
         side(naive, ("in_process", "match", "p50_ms"), ("in_process", "match", "p90_ms")),
         side(ours, ("in_process", "match", "p50_ms"), ("in_process", "match", "p90_ms"))),
        ("one match in process, new text, candidates parsed before: p50 / p99, ms",
         side(naive, ("in_process", "match_new_text", "p50_ms"), ("in_process", "match_new_text", "p99_ms")),
         side(ours, ("in_process", "match_new_text", "p50_ms"), ("in_process", "match_new_text", "p99_ms"))),
        ("one match in process, text and candidates seen first: p50 / p99, ms",
         side(naive, ("in_process", "match_first_time", "p50_ms"), ("in_process", "match_first_time", "p99_ms")),
         side(ours, ("in_process", "match_first_time", "p50_ms"), ("in_process", "match_first_time", "p99_ms"))),
        ("start → first `/v1/health` 200 / every worker answered, s",
         side(naive, ("ready", "first_health_200_s"), ("ready", "all_workers_answered_s")),
         side(ours, ("ready", "first_health_200_s"), ("ready", "all_workers_answered_s"))),
        ("memory per worker (median), MB: Rss / Pss / Private / Shared", mem(naive), mem(ours)),
        (f"recall@{TOP_K} vs exact numpy ({RECALL_QUERIES} queries) / summed score of the {TOP_K} returned vs exact",
         side(naive, ("recall", f"recall_at_{TOP_K}"), ("recall", "score_sum_vs_exact")),
         side(ours, ("recall", f"recall_at_{TOP_K}"), ("recall", "score_sum_vs_exact"))),
        ("vector search of one query, p50 / p99, ms", side(naive, ("recall", "search", "p50_ms"), ("recall", "search", "p99_ms")),
         side(ours, ("recall", "search", "p50_ms"), ("recall", "search", "p99_ms"))),
        ("publish from the store, every analysis cached, s", "–", side(ours, ("publish", "full_warm_cache_s"))),
        (f"publish again after changing {report['args']['change_share']:.0%} of the texts, s", "–",
         side(ours, ("publish", "after_change", "republish_s"))),
        ("full rebuild from scratch (empty analysis cache), s", "–",
         side(ours, ("publish", "from_scratch_s")) if dig(ours, "publish", "from_scratch_s") or ours.get("status")
         else "not run"),
        (f"ratio {report['args']['change_share']:.0%} republish / from scratch", "–",
         side(ours, ("publish", "republish_vs_scratch"))),
    ]
    out = [f"### {data['docs']:,} documents ({data['by_kind']['volunteer']:,} volunteers, "
           f"{data['by_kind']['request']:,} requests): `{report['result_file']}`", "",
           "| measure | A. naive (encode + flat scan) | B. ours |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    notes = []
    for name, result in (("naive", naive), ("ours", ours)):
        rps = dig(result, "http_match", "requests_per_s_by_round")
        if rps:
            notes.append(f"{name} requests/s by round {rps}, other processes kept "
                         f"{dig(result, 'http_match', 'background_cpu_cores_by_round')} cores busy")
        if result.get("status") in ("pending", "failed"):
            notes.append(f"{name} {result['status']}: {'; '.join(result.get('missing', [])) or result.get('error', '')}")
    sweep = dig(ours, "recall", "published_breadth_sweep")
    if sweep:
        name = "nprobe" if "nprobe" in sweep[0] else "ef_search"
        notes.append(f"ours' published {sweep[0]['index_type']} backend searched at {name} "
                     + ", ".join(f"{x[name]}: recall {x[f'recall_at_{TOP_K}']:.3f} in {x['search']['p50_ms']} ms"
                                 for x in sweep))
    if dig(ours, "publish", "full_warm_cache_s") is not None:
        pub = ours["publish"]
        notes.append(f"documents ours analysed (tagged and embedded) per publish: warm cache "
                     f"{cell(pub.get('full_warm_cache_analysed'))}, after the change "
                     f"{cell(dig(pub, 'after_change', 'republish_analysed'))} (of "
                     f"{cell(dig(pub, 'after_change', 'documents'))} changed), from scratch "
                     f"{cell(pub.get('from_scratch_analysed'))}")
    if dig(ours, "publish", "from_scratch_note"):
        notes.append(f"from scratch {ours['publish']['from_scratch_note']}")
    if direct and "stats" in direct:
        t = direct["tuning"]
        notes.append(f"our FaissBackend built in process from the same {direct['stats']['count']:,} volunteer vectors "
                     f"({direct['stats']['index_type']}, {direct['stats'].get('ivf_lists', '-')} lists, "
                     f"nprobe={t.get('nprobe')}): build {direct['build_s']:,.0f} s, recall@{TOP_K} "
                     f"{direct['recall'][f'recall_at_{TOP_K}']:.3f}, search p50 {direct['recall']['search']['p50_ms']} ms; "
                     f"memory-mapped after save/load: recall {direct['recall_mmap'][f'recall_at_{TOP_K}']:.3f}, "
                     f"p50 {direct['recall_mmap']['search']['p50_ms']} ms")
    g = data["generation"]
    notes.append(f"data generation{' (reused from an earlier run)' if data.get('reused') else ''}: "
                 f"{g['total_s']:,.0f} s, {g['docs_per_s']:,.0f} documents/s (upsert {g['upsert_s']:,.0f} s, "
                 f"put_analyses {g['put_analyses_s']:,.0f} s, attach_concepts {g['attach_concepts_s']:,.0f} s, "
                 f"synthesis {g['synthesise_s']:,.0f} s); store {data['sizes_mb'].get('store.sqlite', 0):,.0f} MB, "
                 f"vectors {sum(data['sizes_mb'].get(f'{kind}.npy', 0) for kind in KINDS):,.0f} MB; synthetic vector "
                 f"vs the real embedding of its source document: median cosine "
                 f"{data['realism']['median_cos_to_source_text_embedding']}; exact neighbours of the {RECALL_QUERIES} "
                 f"synthetic queries: top-1 / top-{TOP_K} cosine median "
                 f"{data['neighbours']['synthetic_top1_cos_median']} / {data['neighbours'][f'synthetic_top{TOP_K}_cos_median']}"
                 f" (the real corpus, its requests vs its {data['neighbours']['corpus_volunteers']} volunteers: "
                 f"{data['neighbours']['corpus_requests_vs_corpus_volunteers_top1_cos_median']} / "
                 f"{data['neighbours'][f'corpus_requests_vs_corpus_volunteers_top{TOP_K}_cos_median']})")
    out += [""] + [f"- {note}." for note in notes]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- main


def source_attributes(ref: Reference) -> Callable[[np.ndarray], list[dict[str, list[str]]]]:
    def attributes(sources: np.ndarray) -> list[dict[str, list[str]]]:
        out = []
        for s in sources:
            meta = ref.documents[int(s)].meta
            remote = meta.get("remote")
            out.append({"languages": [x for x in meta.get("languages", []) if isinstance(x, str) and x],
                        "modes": ["remote"] if remote is True else ["on_site"] if remote is False else []})
        return out

    return attributes


def code_digest() -> str:
    """sha256 of nlp_service/**/*.py: which code a result was measured with (the package changes often)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "nlp_service").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def failure(exc: BaseException) -> dict[str, str]:
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def run(args: argparse.Namespace, run_dir: Path, report: dict[str, Any]) -> None:
    ref = load_reference(args.work_dir / "cache")
    data_dir, data = ensure_data(args.docs, ref, args.work_dir, args.seed, args.noise, args.regenerate)
    report["data"] = {**data, "path": str(data_dir)}
    texts = [d.text for d in ref.documents if d.kind == "request"]
    bodies = [json.dumps({"text": t, "kind": "request", "top_k": TOP_K}, ensure_ascii=False).encode("utf-8")
              for t in texts]
    queries = np.load(data_dir / "queries.npy")
    log(f"exact top {TOP_K} of {len(queries)} queries over the volunteers, numpy brute force")
    vectors, ids = load_vectors(data_dir, "volunteer")
    start = time.perf_counter()
    exact_rows, exact_scores = exact_top_k(vectors, queries, TOP_K)
    truth = Truth([{str(ids[r]) for r in rows} for rows in exact_rows], exact_scores, vectors,
                  {str(x): row for row, x in enumerate(ids)})
    report["exact_brute_force_s"] = round(time.perf_counter() - start, 1)
    report["data"]["neighbours"] = neighbour_similarity(ref, exact_scores)
    timeout = max(1800.0, args.docs / 20)

    sides: list[Side] = []
    report["naive"] = {"status": "skipped"}
    if "naive" not in args.skip:
        naive = naive_side(data_dir, args.workers)
        report["naive"] = naive.result
        sides.append(naive)
    report["ours"] = {"status": "skipped"}
    ours_ok = False
    if "ours" not in args.skip:
        caps = ours_capabilities()
        if caps["missing"]:
            report["ours"] = {"status": "pending", "missing": caps["missing"], "capabilities": caps,
                              "note": "adapt ours_commands() / ours_settings() in bench/live_index.py if needed"}
            log(f"ours: pending ({'; '.join(caps['missing'])})")
        else:
            try:
                ours, report["ours"] = ours_prepare(data_dir, run_dir, timeout, args.workers, data["taxonomy_version"])
                report["ours"]["capabilities"] = caps
                sides.append(ours)
                ours_ok = True
            except Exception as exc:  # measure the other side anyway; the report says what failed
                report["ours"] = {**report.get("ours", {}), **failure(exc)}
                log(f"ours failed: {exc}")
    if sides:
        measure_http(sides, run_dir, bodies, args, texts)
    ours_ok = ours_ok and report["ours"].get("status") != "failed"
    naive_ok = "naive" not in args.skip and report["naive"].get("status") != "failed"

    log("in process: one match at a time (naive: encode + flat search; ours: Services(...).matcher.match)")
    matchers: dict[str, Callable[[str], Any]] = {}
    naive_matcher = services = None
    if naive_ok:
        try:
            from naive_service import NaiveMatcher

            start = time.perf_counter()
            naive_matcher = NaiveMatcher(data_dir, ROOT / MODEL_DIR)
            report["naive"]["in_process"] = {"load_s": round(time.perf_counter() - start, 2)}
            matchers["naive"] = lambda t: naive_matcher.match(t, "request", TOP_K)
        except Exception as exc:
            report["naive"]["in_process"] = failure(exc)
    if ours_ok:
        try:
            from nlp_service.services import Services

            start = time.perf_counter()
            services = Services(ours_settings(Path(report["ours"]["paths"]["index_dir"]),
                                              Path(report["ours"]["paths"]["store"])))
            services_s = time.perf_counter() - start
            start = time.perf_counter()
            services.current_index()
            report["ours"]["in_process"] = {"services_s": round(services_s, 2),
                                            "index_load_s": round(time.perf_counter() - start, 2)}
            matchers["ours"] = lambda t: services.matcher.match(services.current_index(), t, "request", TOP_K)
        except Exception as exc:
            report["ours"]["in_process"] = failure(exc)
    if matchers:
        for name, summary in measure_in_process(matchers, texts, args.inproc_repeat, 3).items():
            report[name]["in_process"]["match"] = summary["repeated"]
            report[name]["in_process"]["match_first_time"] = summary["first_time"]
            report[name]["in_process"]["match_new_text"] = summary["new_text_warm_documents"]
    if naive_matcher is not None:
        index, naive_ids = naive_matcher.indexes["volunteer"], naive_matcher.ids["volunteer"]

        def naive_search(query: np.ndarray) -> list[str]:
            _, rows = index.search(query[None, :], TOP_K)
            return [str(naive_ids[r]) for r in rows[0] if r >= 0]

        report["naive"]["recall"] = {**recall_at_k(naive_search, queries, truth),
                                     "searched_with": "faiss IndexFlatIP (the naive index)"}
        del index, naive_search
    if services is not None:
        try:
            search, how, backend_dir = published_searcher(services.current_index(),
                                                          Path(report["ours"]["paths"]["index_dir"]))
            report["ours"]["recall"] = {**recall_at_k(search, queries, truth), "searched_with": how}
            del search
            if backend_dir is not None:
                sweep = search_breadth_sweep(backend_dir, "volunteer", queries, truth)
                if sweep is not None:
                    report["ours"]["recall"]["published_breadth_sweep"] = sweep
        except Exception as exc:
            report["ours"]["recall"] = failure(exc)
    naive_matcher = services = None  # free both before the rebuilds
    matchers.clear()
    import gc

    gc.collect()

    if ours_ok:
        try:
            ours_republish(report["ours"], data, run_dir, timeout, args)
        except Exception as exc:
            report["ours"]["publish"] = {**report["ours"].get("publish", {}), **failure(exc)}
            log(f"ours: republish failed: {exc}")
    if args.direct_backend == "on" or (args.direct_backend == "auto" and not ours_ok and "ours" not in args.skip):
        log("direct backend: our FaissBackend built in process from the volunteer vectors")
        try:
            report["ours_backend_direct"] = direct_backend(data_dir, queries, truth, source_attributes(ref), run_dir)
        except Exception as exc:
            report["ours_backend_direct"] = failure(exc)
            log(f"direct backend failed: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="documents, half of each kind [100000]")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k documents, 2 s warm-up, 12 s of load")
    parser.add_argument("--duration", type=float, default=None, help="seconds of measured load per side [30; quick 12]")
    parser.add_argument("--rounds", type=int, default=3, help="alternating load rounds the duration is split into [3]")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up load [5; quick 2]")
    parser.add_argument("--clients", type=int, default=4, help="load generator threads [4]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers of both services [2]")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=0.25, help="norm of the noise added to each mixed vector [0.25]")
    parser.add_argument("--change-share", type=float, default=0.01, help="share of documents changed [0.01]")
    parser.add_argument("--scratch-max-docs", type=int, default=100_000,
                        help="run the from-scratch rebuild (tags and embeds every document) only up to this N [100000]")
    parser.add_argument("--inproc-repeat", type=int, default=None,
                        help="texts timed in process per side, twice each [90; quick 30]")
    parser.add_argument("--ready-timeout", type=float, default=1800, help="seconds a server may take to answer [1800]")
    parser.add_argument("--direct-backend", choices=("auto", "on", "off"), default="auto",
                        help="also build our FaissBackend in process from the vectors (auto: when ours cannot run)")
    parser.add_argument("--skip", choices=("naive", "ours"), action="append", default=[], help="skip one side")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/nlp-live-bench"),
                        help="caches, generated data (reused by later runs) and per-run folders [/tmp/nlp-live-bench]")
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if cached")
    parser.add_argument("--keep-run", action="store_true", help="keep the run's store copy and index folders")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.quick and args.docs == parser.get_default("docs"):
        args.docs = 10_000
    args.duration = args.duration if args.duration is not None else (12.0 if args.quick else 30.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 5.0)
    args.inproc_repeat = args.inproc_repeat or (30 if args.quick else 90)
    if args.docs < 2 * TOP_K or args.rounds < 1 or args.clients < 1:
        parser.error("need --docs >= 20, --rounds >= 1, --clients >= 1")
    args.work_dir = args.work_dir.resolve()
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, _stop_all_servers)
    signal.signal(signal.SIGHUP, _stop_all_servers)

    created = dt.datetime.now(dt.timezone.utc)
    run_dir = args.work_dir / f"run-{created.strftime('%Y%m%dT%H%M%SZ')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "created_at": created.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3]},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "run_dir": str(run_dir),
        "code": {"nlp_service_sha256": code_digest()},
    }
    stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # libraries print banners on import; keep stdout for the table
            import torch

            torch.set_num_threads(1)
            run(args, run_dir, report)
    except BaseException as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        for server in list(Server._running):
            server.stop()
        if not args.keep_run:
            for leftover in ("ours-store.sqlite", "ours-store.sqlite-wal", "ours-store.sqlite-shm"):
                (run_dir / leftover).unlink(missing_ok=True)
            for folder in ("ours-index", "ours-index-scratch", "direct-backend"):
                shutil.rmtree(run_dir / folder, ignore_errors=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"live-{report['created_at'].replace(':', '')}.json"
        report["result_file"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        report["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        if "data" in report:
            print(markdown(report), file=stdout)
        print(f"wrote {path}", file=stdout)


if __name__ == "__main__":
    main()
