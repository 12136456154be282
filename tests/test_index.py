"""Vector index against brute force, and the versioned store's publish, failure and corruption rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nlp_service.corpus import Document
from nlp_service.errors import IndexCorruptedError, IndexNotFoundError
from nlp_service.index.embedder import HashingEmbedder
from nlp_service.index.store import IndexStore, write_documents, write_kind_vectors
from nlp_service.index.vector_index import FaissIndex


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_faiss_search_equals_brute_force():
    vectors, queries = _unit(500, 32, 1), _unit(7, 32, 2)
    index = FaissIndex(32)
    index.add([f"d{i}" for i in range(500)], vectors)
    hits = index.search(queries, 10)
    scores = queries @ vectors.T
    for row, row_hits in enumerate(hits):
        expected = np.argsort(-scores[row])[:10]
        assert [h.id for h in row_hits] == [f"d{i}" for i in expected]
        np.testing.assert_allclose([h.score for h in row_hits], scores[row, expected], rtol=1e-5)


def test_faiss_round_trip_and_small_k(tmp_path):
    index = FaissIndex(16)
    index.add(["a", "b", "c"], _unit(3, 16, 3))
    index.save(tmp_path)
    loaded = FaissIndex.load(tmp_path)
    assert loaded.ids == ["a", "b", "c"]
    assert len(loaded.search(_unit(1, 16, 4), 50)[0]) == 3
    assert FaissIndex(16).search(_unit(1, 16, 4), 5) == [[]]


def test_add_rejects_wrong_shapes():
    index = FaissIndex(8)
    with pytest.raises(ValueError):
        index.add(["a"], _unit(1, 9, 0))
    with pytest.raises(ValueError):
        index.add(["a", "b"], _unit(1, 8, 0))


def _docs() -> list[Document]:
    return [
        Document("v1", "volunteer", "accountant, bookkeeping"),
        Document("v2", "volunteer", "平面设计 海报"),
        Document("r1", "request", "need bookkeeping help"),
    ]


def _writer(documents: list[Document]):
    embedder = HashingEmbedder(32)
    vectors = embedder.embed([d.text for d in documents])

    def write(staging: Path) -> dict:
        counts = write_kind_vectors(staging, documents, vectors)
        write_documents(staging / "documents.jsonl", documents, [[] for _ in documents])
        return {"model": {"name": embedder.name, "dimension": 32}, "documents": {"total": len(documents), **counts}}

    return write


def test_publish_swaps_pointer_and_keeps_previous_version(tmp_path):
    store = IndexStore(tmp_path)
    with pytest.raises(IndexNotFoundError):
        store.load()
    first = store.write_version(_writer(_docs()))
    assert store.current_version() == first
    loaded = store.load()
    assert loaded.manifest["documents"] == {"total": 3, "volunteer": 2, "request": 1}
    assert set(loaded.manifest["files"]) >= {"documents.jsonl", "volunteer/vectors.faiss", "request/ids.json"}
    second = store.write_version(_writer(_docs()[:2]))
    third = store.write_version(_writer(_docs()))
    assert store.current_version() == third
    assert set(store.list_versions()) == {second, third}, "previous version stays until the next publish"
    assert first not in store.list_versions()


def test_failed_build_leaves_published_index_untouched(tmp_path):
    store = IndexStore(tmp_path)
    good = store.write_version(_writer(_docs()))

    def broken(staging: Path) -> dict:
        (staging / "documents.jsonl").write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.write_version(broken)
    assert store.current_version() == good
    assert store.list_versions() == [good]
    assert not list(tmp_path.glob(".staging-*"))
    assert store.load().document_count == 3


def test_killed_build_leaves_published_index_untouched(tmp_path):
    store = IndexStore(tmp_path)
    good = store.write_version(_writer(_docs()))
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from nlp_service.index.store import IndexStore
        def slow(staging):
            (staging / "documents.jsonl").write_text("partial", encoding="utf-8")
            Path({str(tmp_path / "started")!r}).write_text("1")
            time.sleep(60)
        IndexStore(Path({str(tmp_path)!r})).write_version(slow)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, "builder exited early"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert store.current_version() == good
    assert store.load().document_count == 3
    # The next build cleans the dead staging folder up and publishes normally.
    newer = store.write_version(_writer(_docs()))
    assert store.current_version() == newer
    assert not list(tmp_path.glob(".staging-*"))


def test_corrupted_file_is_detected(tmp_path):
    store = IndexStore(tmp_path)
    version = store.write_version(_writer(_docs()))
    target = store.version_path(version) / "volunteer" / "vectors.faiss"
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptedError, match="checksum"):
        store.load()


def test_missing_file_is_detected(tmp_path):
    store = IndexStore(tmp_path)
    version = store.write_version(_writer(_docs()))
    (store.version_path(version) / "request" / "ids.json").unlink()
    with pytest.raises(IndexCorruptedError, match="missing"):
        store.load()


def test_manifest_is_self_describing(tmp_path):
    store = IndexStore(tmp_path)
    version = store.write_version(_writer(_docs()))
    manifest = json.loads((store.version_path(version) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "nlp-service-index/1"
    assert manifest["version"] == version
    assert manifest["model"]["dimension"] == 32


def test_stored_vector_is_returned_by_id():
    vectors = _unit(5, 16, 7)
    index = FaissIndex(16)
    index.add([f"d{i}" for i in range(5)], vectors)
    np.testing.assert_allclose(index.vector("d3"), vectors[3:4], rtol=1e-6)
    with pytest.raises(KeyError):
        index.vector("missing")
