"""Cross-language matching quality per embedding model, on the team's 30 match fixtures.

    .venv/bin/python bench/match_models.py [MODEL_DIR ...]

For each model: build a private index of the shipped corpus (lexical tags only, so the embedder alone is
compared), then count fixtures whose right volunteer is in the top 3, with pure cosine ranking and with the
service's skill-overlap blend, and the share of top-3 matches written in the query's language (about 0.5 is
language-neutral here; near 1.0 means the model prefers the query's language whatever the topic).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from nlp_service.corpus import load_corpus
    from nlp_service.extract.segment import detect_language
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    models = sys.argv[1:] or [str(ROOT / "models/use-multilingual-v3"), str(ROOT / "models/e5-small-multilingual")]
    cases = [json.loads(line) for line in (ROOT / "tests/data/match_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    documents = load_corpus(ROOT / "corpus/documents")
    print("| model | ranking | top-3 hits | top-3 in the query's language |\n|---|---|---|---|")
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(model_path=Path(model), index_dir=Path(tmp), semantic_tags=False,
                                     taxonomy_dir=ROOT / "corpus/taxonomy", cache_dir=ROOT / "var/cache")
            services = Services(settings)
            services.builder().build(documents)
            index = services.current_index()
            for weight, label in ((0.0, "cosine only"), (settings.tag_weight, f"blend, tag weight {settings.tag_weight}")):
                services.matcher.tag_weight = weight
                hits = same = total = 0
                for case in cases:
                    result = services.matcher.match(index, case["request"], "request", 3)
                    hits += case["expected"] in [m.id for m in result.matches]
                    query_lang = detect_language(case["request"])
                    for m in result.matches:
                        total += 1
                        same += detect_language(index.documents[m.id].document.text) == query_lang
                print(f"| {Path(model).name} | {label} | {hits}/{len(cases)} | {same / total:.2f} |")


if __name__ == "__main__":
    main()
