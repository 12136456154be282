"""Self-describing model folders: ``weights.npz`` (numpy arrays, no pickle) beside ``meta.json`` (what the model
is, what it was trained on, and a checksum of the weights). Written into a new folder and moved into place, so
a reader sees the old folder or the new one, never half of one."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_model_folder(directory: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=False)
    np.savez(tmp / "weights.npz", **arrays)
    (tmp / "meta.json").write_text(json.dumps({**meta, "weights_sha256": sha256_of(tmp / "weights.npz")},
                                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if directory.exists():
        old = directory.with_name(f".{directory.name}.{os.getpid()}.old")
        os.replace(directory, old)
        os.replace(tmp, directory)
        for child in old.iterdir():
            child.unlink()
        old.rmdir()
    else:
        os.replace(tmp, directory)


def read_model_folder(directory: Path, kind: str, fmt: int, names: tuple[str, ...],
                      error: type[Exception]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``meta.json`` and the named arrays of a folder of ``kind`` and format ``fmt``; ``error`` for anything
    missing, unreadable, of another kind or not matching its checksum."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != fmt or meta.get("kind") != kind:
            raise error(f"{directory} is no {kind} of format {fmt}")
        if sha256_of(directory / "weights.npz") != meta.get("weights_sha256"):
            raise error(f"{directory}/weights.npz does not match its checksum in meta.json")
        with np.load(directory / "weights.npz", allow_pickle=False) as weights:
            arrays = {name: weights[name] for name in names}
    except (OSError, ValueError, KeyError) as exc:
        raise error(f"cannot read the {kind} in {directory}: {exc}") from exc
    return meta, arrays
