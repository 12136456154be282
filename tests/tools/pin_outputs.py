"""Regenerate tests/data/pinned_outputs.json from tests/data/pinned_texts.jsonl.

Run after a deliberate change to the taxonomy, the dictionary or the tagger, then review the diff
(`git diff tests/data/pinned_outputs.json`) before committing: the pins are reviewed expectations.

    .venv/bin/python tests/tools/pin_outputs.py
"""

from __future__ import annotations

import json
from pathlib import Path

from nlp_service.services import Services
from nlp_service.settings import load_settings

DATA = Path(__file__).resolve().parents[1] / "data"


def main() -> None:
    services = Services(load_settings())
    pins = {}
    for line in (DATA / "pinned_texts.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        text = item["text"]
        tagged = services.tagger.tag(text)
        pins[item["id"]] = {
            "text": text,
            "lang": tagged.lang,
            "tokens": [t.text for t in services.segmenter.segment(text)],
            "tags": [[t.concept_id, t.surface, t.method] for t in tagged.tags],
        }
    out = DATA / "pinned_outputs.json"
    out.write_text(json.dumps(pins, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(pins)} texts)")


if __name__ == "__main__":
    main()
