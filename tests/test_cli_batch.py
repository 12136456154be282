"""`nlp-service extract --file FILE.jsonl` (and `--file -`): one JSON line out per line, bad lines named."""

from __future__ import annotations

import json

from nlp_service.cli import main


def _use(monkeypatch, settings):
    for name in ("taxonomy_dir", "corpus_dir", "index_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))


LINES = [
    json.dumps({"id": "v1", "text": "本人注册会计师，可以帮忙做账和报税", "kind": "volunteer"}, ensure_ascii=False),
    "",
    "{not json",
    json.dumps({"id": "r1", "text": "We need a lawyer to review our lease"}),
    json.dumps(["not", "an", "object"]),
    json.dumps({"id": "v1", "text": "duplicate id"}),
    json.dumps({"id": "x", "text": "   "}),
    json.dumps({"id": "y", "text": "ok", "kind": "donor"}),
    json.dumps({"id": 7, "text": "UX designer, Figma"}),
]


def test_batch_file_tags_every_good_line_and_names_the_bad_ones(runner, monkeypatch, settings, tmp_path, client):
    _use(monkeypatch, settings)
    path = tmp_path / "batch.jsonl"
    path.write_bytes(("\n".join(LINES) + "\n").encode("utf-8") + b'{"id": "z", "text": "\xff\xfe"}\n')
    result = runner.invoke(main, ["extract", "--file", str(path), "--kind", "request"])
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["v1", "r1", "7"]
    assert out[0]["kind"] == "volunteer" and out[1]["kind"] == "request"  # --kind is the default only
    assert {"finance.bookkeeping", "finance.tax_filing"} <= {t["concept_id"] for t in out[0]["tags"]}
    assert "needs" in out[0] and out[0]["lang"] == "zh"
    api = client.post("/v1/extract", json={"text": "We need a lawyer to review our lease", "kind": "request"})
    assert {k: v for k, v in out[1].items() if k != "id"} == api.get_json()
    errors = result.stderr
    for line, fragment in [(3, "not valid JSON"), (5, "each line must be a JSON object"), (6, "duplicate id 'v1'"),
                           (7, "'text' must be a non-empty string"), (8, "'kind' must be one of"),
                           (10, "not valid UTF-8")]:
        assert f"batch.jsonl:{line}: {fragment}" in errors, errors
    assert "6 bad line(s) skipped" in errors


def test_batch_from_stdin(runner, monkeypatch, settings):
    _use(monkeypatch, settings)
    lines = "\n".join(json.dumps({"id": f"d{n}", "text": f"需要会计做账 {n}"}, ensure_ascii=False) for n in range(40))
    result = runner.invoke(main, ["extract", "--file", "-"], input=lines.encode("utf-8"))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [f"d{n}" for n in range(40)]  # order kept across chunks of 32
    assert all(any(t["concept_id"] == "finance.bookkeeping" for t in o["tags"]) for o in out)


def test_text_and_file_are_exclusive(runner):
    assert runner.invoke(main, ["extract"]).exit_code == 2
    assert runner.invoke(main, ["extract", "some text", "--file", "-"]).exit_code == 2
