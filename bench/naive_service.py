"""The naive baseline of bench/live_index.py: encode the text, scan every vector of the other kind.

What a first prototype of the matching service would be, and nothing more: a plain Flask app whose
``POST /v1/match`` runs sentence-transformers ``encode`` on the text, searches a faiss ``IndexFlatIP``
holding *all* vectors of the other kind (exact, one full scan per query) and returns ids and scores.
No tagging, no re-ranking, no input validation. Each worker reads the vectors from ``<kind>.npy`` into
its own memory (no mmap, no sharing) and ids from ``<kind>.ids.npy``.

Served by the benchmark as (one torch and one OpenMP thread per worker, models loaded per worker)::

    NAIVE_DATA_DIR=/tmp/nlp-live-bench/data-100000 NAIVE_MODEL_DIR=models/use-multilingual-v3 \\
    OMP_NUM_THREADS=1 .venv/bin/python -m gunicorn --workers 2 --threads 1 --bind 127.0.0.1:8100 \\
        --pythonpath bench 'naive_service:create_app()'

Benchmark-only code: nothing in nlp_service imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

KINDS = ("volunteer", "request")


class NaiveMatcher:
    """The model and one flat index per kind. ``match`` is encode + exact search, nothing else."""

    def __init__(self, data_dir: Path, model_dir: Path) -> None:
        import faiss
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True, trust_remote_code=True)
        self.indexes = {}
        self.ids = {}
        for kind in KINDS:
            vectors = np.load(Path(data_dir) / f"{kind}.npy")  # read into private memory, as a prototype would
            index = faiss.IndexFlatIP(vectors.shape[1])
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            del vectors
            self.indexes[kind] = index
            self.ids[kind] = np.load(Path(data_dir) / f"{kind}.ids.npy")

    def match(self, text: str, kind: str, top_k: int = 10) -> list[tuple[str, float]]:
        other = "volunteer" if kind == "request" else "request"
        vector = self.model.encode([text], normalize_embeddings=True, show_progress_bar=False)
        scores, rows = self.indexes[other].search(np.ascontiguousarray(vector, dtype=np.float32), top_k)
        return [(str(self.ids[other][r]), float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]


def create_app():
    """The gunicorn entry point (``naive_service:create_app()``): loads everything in the worker."""
    from flask import Flask, jsonify, request

    matcher = NaiveMatcher(Path(os.environ["NAIVE_DATA_DIR"]), Path(os.environ["NAIVE_MODEL_DIR"]))
    app = Flask(__name__)

    @app.get("/v1/health")
    def health():
        counts = {kind: int(index.ntotal) for kind, index in matcher.indexes.items()}
        return jsonify({"status": "ok", "pid": os.getpid(), "documents": counts})

    @app.post("/v1/match")
    def match():
        body = request.get_json()
        hits = matcher.match(body["text"], body["kind"], int(body.get("top_k", 10)))
        return jsonify({"matches": [{"id": doc_id, "score": score} for doc_id, score in hits]})

    return app
