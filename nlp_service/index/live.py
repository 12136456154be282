"""The live index: a durable document store (SQLite) as the source of truth, a published vector snapshot
(faiss, memory-mapped and shared between workers) and, per worker, the store's changes since that snapshot.

- Writes go to the store (``DocumentWriter``): each document is analysed once per content, model
  fingerprint and taxonomy version (tags with roles, needs, vector), then committed. A write is
  acknowledged after the commit.
- Each worker's :class:`LiveIndex` polls the store's change feed (at most every ``poll_seconds``) and
  applies upserts and deletes to the vector backend's in-memory delta, so writes are visible to matches on
  every worker within ``poll_seconds`` plus one request, without a rebuild.
- A rebuild (:class:`SnapshotBuilder`) imports corpus files into the store, analyses only documents whose
  content has no analysis yet, writes the vectors of all documents into a new version directory and
  publishes it atomically (``IndexStore``), all under one lock.
- Documents are read from the store on demand (an LRU of parsed documents per worker), never held whole.

Version directory (format ``nlp-service-index/2``)::

    manifest.json     model (name, dimension, fingerprint), taxonomy version, store seq, counts, checksums
    vectors/          FaissBackend.save(): <kind>.faiss, ids and inverted lists as .npy, manifest
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from nlp_service.corpus import KINDS, Document
from nlp_service.errors import IndexCorruptedError
from nlp_service.extract.needs import Needs, NeedsExtractor
from nlp_service.extract.roles import MATCHING_ROLES
from nlp_service.extract.tagger import TaxonomyTagger
from nlp_service.index.backends import FaissBackend, VectorFilter
from nlp_service.index.embedder import Embedder
from nlp_service.index.store import IndexedDocument
from nlp_service.index.vector_index import Hit
from nlp_service.store.documents import Analysis, AnalysisKey, DocumentStore, WriteResult, content_hash

logger = logging.getLogger(__name__)

FORMAT = "nlp-service-index/2"
VECTORS = "vectors"
Progress = Callable[[int], None]


def embedding_text(document: Document, limit: int = 3_000) -> str:
    """Title and text, as embedded (the first ``limit`` characters: cost grows with length, meaning doesn't)."""
    title = document.meta.get("title")
    if isinstance(title, str) and title.strip():
        return f"{title.strip()}\n{document.text}"[:limit]
    return document.text[:limit]


def document_attributes(needs: Needs, lang: str) -> dict[str, list[str]]:
    """What the vector backend filters on: languages (stated, else written in), place id, mode."""
    languages = sorted(needs.language_codes) or (["en", "zh"] if lang == "mixed" else [lang])
    return {
        "languages": languages,
        "locations": [needs.location_id] if needs.location_id else [],
        "modes": [needs.mode[0]] if needs.mode else [],
    }


class DocumentAnalyzer:
    """Tags (with roles), needs and the vector of documents, cached in the store by content."""

    def __init__(self, tagger: TaxonomyTagger, embedder: Embedder, store: DocumentStore, model_fingerprint: str,
                 taxonomy_version: str, *, batch_size: int = 64) -> None:
        self.tagger = tagger
        self.embedder = embedder
        self.store = store
        self.model_fingerprint = model_fingerprint
        self.taxonomy_version = taxonomy_version
        self.batch_size = batch_size
        self.parallel: ParallelAnalysis | None = None  # set by a rebuild with --workers N
        self.parallel_min_docs = 2_000

    def key(self, document: Document) -> AnalysisKey:
        return AnalysisKey(content_hash(document), self.model_fingerprint, self.taxonomy_version)

    def ensure(self, documents: Sequence[Document], progress: Progress | None = None) -> dict[AnalysisKey, Analysis]:
        """Analyses of ``documents``, computing and storing only the missing ones."""
        keys = [self.key(d) for d in documents]
        found = self.store.get_analyses(list(dict.fromkeys(keys)))
        missing = [(k, d) for k, d in zip(keys, documents) if k not in found]
        seen: set[AnalysisKey] = set()
        todo = [(k, d) for k, d in missing if not (k in seen or seen.add(k))]
        batches = [todo[start : start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        if self.parallel is not None and len(todo) >= self.parallel_min_docs:
            results = self.parallel.map_batches([[d for _, d in batch] for batch in batches])
        else:
            results = (self.analyse([d for _, d in batch]) for batch in batches)
        for batch, analyses in zip(batches, results):
            items = [(key, analysis) for (key, _), analysis in zip(batch, analyses)]
            self.store.put_analyses(items)
            found.update(items)
            if progress is not None:
                progress(len(batch))
        return found

    def analyse(self, docs: Sequence[Document]) -> list[Analysis]:
        """Tags (with roles), needs (as extracted from the text; metadata is merged when read) and vectors."""
        tagged = self.tagger.tag_many([d.text for d in docs], [d.kind for d in docs])
        vectors = self.embedder.embed([embedding_text(d) for d in docs])
        return [Analysis([t.to_dict() for t in result.tags], result.needs.to_dict() if result.needs is not None else {},
                         vectors[row]) for row, result in enumerate(tagged)]


_WORKER_SERVICES = None


def _worker_init(settings) -> None:
    """In each analysis process: its own services (models load here, once; one thread each)."""
    global _WORKER_SERVICES
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    from nlp_service.services import Services

    _WORKER_SERVICES = Services(settings)


def _worker_analyse(docs: list[Document]) -> list[tuple[list[dict], dict, bytes]]:
    analyses = _WORKER_SERVICES.analyzer.analyse(docs)  # type: ignore[union-attr]
    return [(a.tags, a.needs, np.asarray(a.vector, dtype=np.float32).tobytes()) for a in analyses]


class ParallelAnalysis:
    """Analyse batches in ``workers`` processes (spawned: torch does not survive fork), in input order."""

    def __init__(self, settings, workers: int) -> None:
        import concurrent.futures
        import multiprocessing

        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=(settings,))

    def map_batches(self, batches: list[list[Document]]) -> Iterator[list[Analysis]]:
        for rows in self._pool.map(_worker_analyse, batches):
            yield [Analysis(tags, needs, np.frombuffer(vector, dtype=np.float32)) for tags, needs, vector in rows]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DocumentWriter:
    """Upserts and deletes through the store; a write returns after its commit."""

    def __init__(self, analyzer: DocumentAnalyzer) -> None:
        self.analyzer = analyzer
        self.store = analyzer.store

    def upsert(self, documents: Sequence[Document], progress: Progress | None = None) -> list[WriteResult]:
        analyses = self.analyzer.ensure(documents, progress)
        results = self.store.upsert(documents)
        for document, result in zip(documents, results):
            if result.status == "unchanged":
                continue
            key = self.analyzer.key(document)
            concepts = sorted({(t["concept_id"], t.get("role", "offered")) for t in analyses[key].tags})
            self.store.attach_concepts(document.id, key.content_hash, concepts)
        return results

    def delete(self, ids: Sequence[str]) -> list[str]:
        return self.store.delete(ids)


class StoreDocuments(Mapping[str, IndexedDocument]):
    """Documents read from the store on demand, parsed once per (id, seq) into an LRU."""

    def __init__(self, store: DocumentStore, analyzer_key: Callable[[Document], AnalysisKey],
                 needs: NeedsExtractor | None, *, cache_size: int = 20_000,
                 fallback_version: tuple[str, str] | None = None) -> None:
        self.store = store
        self._key = analyzer_key
        # (model fingerprint, analysis version) of the published snapshot: documents analysed for it are read
        # with that key when the running code's own key has no analysis yet (a code upgrade before a rebuild)
        self._fallback = fallback_version
        self._needs = needs
        self._cache: OrderedDict[str, tuple[int, IndexedDocument]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _keys(self, document: Document) -> list[AnalysisKey]:
        key = self._key(document)
        if self._fallback is None or (key.model_fingerprint, key.taxonomy_version) == self._fallback:
            return [key]
        return [key, AnalysisKey(key.content_hash, *self._fallback)]

    def _build(self, stored) -> IndexedDocument:
        keys = self._keys(stored.document)
        found = self.store.get_analyses(keys)
        return self._entry(stored.document, next((found[k] for k in keys if k in found), None))

    def _entry(self, document: Document, analysis: Analysis | None) -> IndexedDocument:
        tags = analysis.tags if analysis is not None else []
        raw_needs = analysis.needs if analysis is not None else {}
        needs = Needs.from_dict(raw_needs) if raw_needs else Needs()
        if self._needs is not None and document.meta:
            needs = self._needs.merge_metadata(needs, document.meta)
        entry = IndexedDocument.from_parts(document, tags, needs, _lang(document.text))
        return entry

    def invalidate(self, ids: Sequence[str]) -> None:
        """Forget parsed documents the change feed reports as changed (the cache is otherwise trusted)."""
        with self._lock:
            for doc_id in ids:
                self._cache.pop(doc_id, None)

    def _remember(self, doc_id: str, seq: int, entry: IndexedDocument) -> None:
        with self._lock:
            self._cache[doc_id] = (seq, entry)
            self._cache.move_to_end(doc_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def get_entry(self, doc_id: str) -> IndexedDocument | None:
        if not isinstance(doc_id, str) or not doc_id:
            return None
        with self._lock:
            cached = self._cache.get(doc_id)
            if cached is not None:
                self._cache.move_to_end(doc_id)
                return cached[1]
        stored = self.store.get(doc_id)
        if stored is None:
            return None
        entry = self._build(stored)
        self._remember(doc_id, stored.seq, entry)
        return entry

    def get_many(self, ids: Sequence[str]) -> dict[str, IndexedDocument]:
        """Parsed documents for ``ids`` (missing ones absent), reading the misses in two queries."""
        found: dict[str, IndexedDocument] = {}
        missing: list[str] = []
        with self._lock:
            for doc_id in ids:
                cached = self._cache.get(doc_id)
                if cached is not None:
                    found[doc_id] = cached[1]
                else:
                    missing.append(doc_id)
        if missing:
            stored = self.store.get_many(missing)
            keys = {doc_id: self._keys(s.document) for doc_id, s in stored.items()}
            analyses = self.store.get_analyses(list(dict.fromkeys(k for ks in keys.values() for k in ks)))
            for doc_id, item in stored.items():
                analysis = next((analyses[k] for k in keys[doc_id] if k in analyses), None)
                entry = self._entry(item.document, analysis)
                self._remember(doc_id, item.seq, entry)
                found[doc_id] = entry
        return found

    def __getitem__(self, doc_id: str) -> IndexedDocument:
        entry = self.get_entry(doc_id)
        if entry is None:
            raise KeyError(doc_id)
        return entry

    def get(self, doc_id: str, default: Any = None) -> Any:  # type: ignore[override]
        entry = self.get_entry(doc_id)
        return default if entry is None else entry

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(doc_id) and self.store.get(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        for stored in self.store.iter_documents():
            yield stored.id

    def __len__(self) -> int:
        return self.store.count()


class KindVectors:
    """One kind of the backend, with the small surface the matcher uses."""

    def __init__(self, backend: FaissBackend, kind: str) -> None:
        self._backend = backend
        self.kind = kind

    def __len__(self) -> int:
        return self._backend.count(self.kind)

    def search(self, queries: np.ndarray, k: int, filters: VectorFilter | None = None) -> list[list[Hit]]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if k <= 0 or len(self) == 0:
            return [[] for _ in range(queries.shape[0])]
        return [self._backend.search(row, self.kind, min(k, len(self)), filters) for row in queries]

    def vector(self, item_id: str) -> np.ndarray:
        found = self._backend.get(self.kind, [item_id])
        if item_id not in found:
            raise KeyError(item_id)
        return np.asarray(found[item_id], dtype=np.float32).reshape(1, -1)


class LiveIndex:
    """A published snapshot plus the store's changes since it (duck-types ``LoadedIndex``)."""

    pushes_filters = True

    def __init__(self, version: str, path: Path, manifest: dict[str, Any], backend: FaissBackend,
                 store: DocumentStore, documents: StoreDocuments, *, poll_seconds: float = 0.25) -> None:
        self.version = version
        self.path = path
        self.manifest = manifest
        self.backend = backend
        self.store = store
        self.documents = documents
        self.vectors = {kind: KindVectors(backend, kind) for kind in KINDS}
        self.seq = int(manifest.get("store", {}).get("seq", 0))
        self.poll_seconds = poll_seconds
        self._polled = 0.0
        self._lock = threading.Lock()
        self._key: Callable[[Document], AnalysisKey] = documents._key

    @classmethod
    def open(cls, version: str, path: Path, manifest: dict[str, Any], store: DocumentStore,
             documents: StoreDocuments, *, poll_seconds: float = 0.25) -> "LiveIndex":
        try:
            backend = FaissBackend.load(path / VECTORS, mmap=True, verify=False)
        except IndexCorruptedError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorruptedError(f"index version {version}: vectors cannot be read: {exc}") from exc
        index = cls(version, path, manifest, backend, store, documents, poll_seconds=poll_seconds)
        index.refresh(force=True)
        return index

    @property
    def document_count(self) -> int:
        return sum(len(v) for v in self.vectors.values())

    def refresh(self, *, force: bool = False) -> int:
        """Apply the store's changes since the last poll (at most every ``poll_seconds``)."""
        now = time.monotonic()
        if not force and now - self._polled < self.poll_seconds:
            return 0
        with self._lock:
            if not force and now - self._polled < self.poll_seconds:
                return 0
            self._polled = now
            applied = 0
            while True:
                changes = self.store.changes_since(self.seq, limit=2_000)
                if not changes:
                    break
                self._apply(changes)
                applied += len(changes)
                self.seq = changes[-1].seq
            if applied:
                logger.info("index %s: applied %s document changes (store seq %s)", self.version, applied, self.seq)
            return applied

    def _apply(self, changes) -> None:
        ids = [c.id for c in changes]
        self.documents.invalidate(ids)
        for kind in KINDS:  # a document may have changed kind: drop it everywhere first
            self.backend.delete(kind, ids)
        upserts = [c for c in changes if c.op == "upsert"]
        by_kind: dict[str, tuple[list[str], list[np.ndarray], list[dict]]] = {k: ([], [], []) for k in KINDS}
        for change in upserts:
            entry = self.documents.get_entry(change.id)
            if entry is None or entry.document.kind not in by_kind:
                continue
            keys = self.documents._keys(entry.document)
            found = self.store.get_analyses(keys)
            analysis = next((found[k] for k in keys if k in found), None)
            if analysis is None:
                logger.warning("document changed without an analysis for the served model; skipped until rebuild")
                continue
            ids, vectors, attrs = by_kind[entry.document.kind]
            ids.append(entry.document.id)
            vectors.append(analysis.vector)
            attrs.append(document_attributes(entry.needs_obj, entry.lang))
        for kind, (ids, vectors, attrs) in by_kind.items():
            if ids:
                self.backend.upsert(kind, ids, np.vstack(vectors), attrs)


class SnapshotBuilder:
    """Import, analyse what is new, write the vectors of every stored document, publish — under one lock."""

    def __init__(self, analyzer: DocumentAnalyzer, index_store, needs: NeedsExtractor | None, *,
                 model_name: str, backend_tuning: Mapping[str, Any] | None = None) -> None:
        self.analyzer = analyzer
        self.writer = DocumentWriter(analyzer)
        self.index_store = index_store
        self.needs = needs
        self.model_name = model_name
        self.backend_tuning = dict(backend_tuning or {})  # FaissTuning fields

    def build(self, documents: Sequence[Document] = (), progress: Progress | None = None,
              analysis_progress: Progress | None = None) -> str:
        with self.index_store.rebuild_lock():
            if documents:
                self.writer.upsert(list(documents), analysis_progress)
            store = self.analyzer.store
            pending = store.documents_needing_analysis(self.analyzer.model_fingerprint, self.analyzer.taxonomy_version)
            if pending:
                stored = [store.get(doc_id) for doc_id in pending]
                self.writer.upsert([s.document for s in stored if s is not None], analysis_progress)
            return self.index_store.write_version(lambda staging: self._write(staging, progress), locked=True)

    def _write(self, staging: Path, progress: Progress | None) -> dict[str, Any]:
        store = self.analyzer.store
        seq = store.last_seq()
        backend = FaissBackend(self.analyzer.embedder.dimension, **self.backend_tuning)
        counts = {kind: 0 for kind in KINDS}
        batch: list[Document] = []

        def flush() -> None:
            keys = [self.analyzer.key(d) for d in batch]
            found = store.get_analyses(list(dict.fromkeys(keys)))
            by_kind: dict[str, tuple[list[str], list[np.ndarray], list[dict]]] = {k: ([], [], []) for k in KINDS}
            for document, key in zip(batch, keys):
                analysis = found.get(key)
                if analysis is None:
                    continue
                needs = Needs.from_dict(analysis.needs) if analysis.needs else Needs()
                if self.needs is not None and document.meta:
                    needs = self.needs.merge_metadata(needs, document.meta)
                lang = _lang(document.text)
                ids, vectors, attrs = by_kind[document.kind]
                ids.append(document.id)
                vectors.append(analysis.vector)
                attrs.append(document_attributes(needs, lang))
            for kind, (ids, vectors, attrs) in by_kind.items():
                if ids:
                    backend.upsert(kind, ids, np.vstack(vectors), attrs)
                    counts[kind] += len(ids)
            if progress is not None:
                progress(len(batch))
            batch.clear()

        with backend.bulk():  # each kind is built once, from all its vectors (an IVF trained on them all)
            for stored in store.iter_documents():
                batch.append(stored.document)
                if len(batch) >= 2_000:
                    flush()
            if batch:
                flush()
        if sum(counts.values()) == 0:
            raise ValueError("cannot publish an index with no analysed documents")
        backend.save(staging / VECTORS)
        tagger = self.analyzer.tagger
        semantic = tagger.semantic
        return {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": self.model_name, "dimension": self.analyzer.embedder.dimension,
                      "fingerprint": self.analyzer.model_fingerprint},
            "taxonomy": {"name": tagger.taxonomy.name, "version": tagger.taxonomy.full_version},
            "analysis_version": self.analyzer.taxonomy_version,
            "documents": {"total": sum(counts.values()), **counts},
            "store": {"path": str(store.path), "seq": seq},
            "format_features": ["roles", "needs", "live"],
            "tagging": {"semantic": semantic is not None,
                        "thresholds": semantic.thresholds if semantic is not None else None},
            "vectors": {kind: backend.index_type(kind) for kind in KINDS},
        }


def _lang(text: str) -> str:
    from nlp_service.extract.segment import detect_language

    return detect_language(text)


__all__ = ["FORMAT", "DocumentAnalyzer", "DocumentWriter", "LiveIndex", "SnapshotBuilder", "StoreDocuments",
           "document_attributes", "embedding_text", "MATCHING_ROLES"]
