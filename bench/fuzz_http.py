"""Hostile input, counted: N seeded random requests (bodies, query strings, paths, methods, headers) through
the real app, and the time of 20,000-character texts of every shape. No 5xx is allowed.

    .venv/bin/python bench/fuzz_http.py --requests 10000      # the acceptance run (results to bench/results/)
    .venv/bin/python bench/fuzz_http.py --requests 600 --quick  # what the test suite runs

Requests go through Flask's test client (in process: the same app, routing, parsing and error handlers as
the served one, without the network).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
ALPHABET = ["a", "Z", "志", "愿", " ", "\n", "\u3000", "😀", "\\", '"', "\x00", "é", "ل", "$", "0", "²", "%",
            "&", "=", "?", "#", "/", "..", "\ud800", "上海", "Shanghai", "EN", "英语", "-1", "1e309", "null"]
PATHS = ["/v1/extract", "/v1/match", "/v1/health", "/v1/taxonomy", "/v1/documents", "/v1/documents/{id}",
         "/v1/documents/{id}/matches", "/v1/feedback", "/v1/nothing", "/", "/documents", "/status", "/openapi.json"]
KEYS = ["text", "kind", "top_k", "filters", "remote", "languages", "location", "documents", "id", "x", "cursor",
        "match_id", "outcome", "rank", "band", "reason", "query_text"]
QUERY_KEYS = ["top_k", "kind", "tag", "cursor", "limit", "location", "languages", "language", "remote", "lang", "q",
              "page", "x"]


def rand_text(rng: random.Random, size: int | None = None) -> str:
    n = size if size is not None else rng.randint(0, 12)
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def rand_json(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 5, 51, 10**20, 2**63])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, float("nan")]) if rng.random() < 0.3 else rng.random() * 100
    if kind == 4:
        return rand_text(rng)
    if kind == 5:
        return [rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS) if rng.random() < 0.8 else rand_text(rng): rand_json(rng, depth + 1)
            for _ in range(rng.randint(0, 5))}


def rand_request(rng: random.Random, doc_ids: list[str]) -> dict:
    path = rng.choice(PATHS).replace("{id}", rng.choice(doc_ids + [rand_text(rng) or "x", "%ff", "..%2f"]))
    query = "&".join(f"{rng.choice(QUERY_KEYS)}={rand_text(rng)}" for _ in range(rng.randint(0, 3)))
    method = rng.choice(["GET", "GET", "POST", "POST", "POST", "PUT", "PUT", "DELETE", "PATCH"])
    shape = rng.randint(0, 3)
    if shape == 0:
        body = json.dumps(rand_json(rng), ensure_ascii=rng.random() < 0.5, allow_nan=True).encode("utf-8", "surrogatepass")
    elif shape == 1:
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    elif shape == 2:
        body = json.dumps({"text": rand_text(rng, rng.randint(1, 60)), "kind": rng.choice(["request", "volunteer", "x"]),
                           "top_k": rng.choice([1, 3, 50, 0, "3"]),
                           "filters": rand_json(rng) if rng.random() < 0.5 else {"location": rand_text(rng)}},
                          ensure_ascii=True).encode()
    else:
        body = b""
    headers = {"Content-Type": rng.choice(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])}
    if rng.random() < 0.3:
        headers["Authorization"] = rng.choice(["Bearer x", "Bearer", "Basic abc", "bearer \u00e9"])
    elif rng.random() < 0.5:
        headers["Authorization"] = "Bearer fuzz-token"  # get past the token check into the write views
    # a client sends bytes: percent-encode (a lone surrogate as the invalid UTF-8 bytes it would be)
    raw = path + (f"?{query}" if query else "")
    encoded = quote(raw, safe="/?&=%", errors="surrogatepass")
    return {"method": method, "path": encoded, "body": body, "headers": headers}


def run(requests: int, seed: int = 11) -> dict:
    sys.path.insert(0, str(ROOT))
    import tempfile

    from nlp_service.app import create_app
    from nlp_service.corpus import load_corpus
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        settings = load_settings(index_dir=Path(tmp) / "index", feedback_db=Path(tmp) / "feedback.sqlite",
                                 write_tokens="fuzz-token")
        services = Services(settings)
        corpus = load_corpus(settings.corpus_dir)
        services.builder().build(corpus[:60])
        app = create_app(services=services)
        client = app.test_client()
        doc_ids = [d.id for d in corpus[:60]]
        statuses: dict[int, int] = {}
        failures: list[dict] = []
        started = time.perf_counter()
        for _ in range(requests):
            req = rand_request(rng, doc_ids)
            try:
                response = client.open(req["path"], method=req["method"], data=req["body"], headers=req["headers"])
                status = response.status_code
            except Exception as exc:  # the test client raising is a failure too
                status = 599
                failures.append({"request": {**req, "body": req["body"][:80].decode("utf-8", "replace")}, "error": repr(exc)})
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 and len(failures) < 20:
                failures.append({"request": {**req, "body": req["body"][:80].decode("utf-8", "replace")}, "status": status})
        fuzz_seconds = time.perf_counter() - started
        long_times: dict[str, float] = {}
        shapes = {"dollars": "$" * 20_000, "letters": "a" * 20_000, "digits": "0" * 20_000, "han": "中" * 20_000,
                  "words": ("volunteer accountant " * 1000)[:20_000], "mixed": ("会计accountant$%0 " * 1200)[:20_000],
                  "newlines": "\n" * 19_999 + "a", "surrogate-free emoji": "😀" * 20_000}
        for name, text in shapes.items():
            for path in ("/v1/extract", "/v1/match"):
                t0 = time.perf_counter()
                response = client.post(path, json={"text": text, "kind": "request"})
                elapsed = time.perf_counter() - t0
                long_times[f"{path} {name}"] = round(elapsed, 3)
                if response.status_code >= 500:
                    failures.append({"request": f"{path} {name}", "status": response.status_code})
    five_xx = sum(n for s, n in statuses.items() if s >= 500)
    return {"requests": requests, "seed": seed, "statuses": dict(sorted(statuses.items())), "five_xx": five_xx,
            "fuzz_seconds": round(fuzz_seconds, 1), "long_texts_seconds": long_times,
            "long_texts_max_seconds": max(long_times.values()),
            "long_texts_median_seconds": round(statistics.median(long_times.values()), 3), "failures": failures[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="Do not write a results file.")
    args = parser.parse_args()
    result = run(args.requests)
    print(json.dumps(result, ensure_ascii=True, indent=2))
    if not args.quick:
        out = ROOT / "bench" / "results" / f"fuzz-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, ensure_ascii=True, indent=2), encoding="utf-8")
        print(f"wrote {out}")
    sys.exit(1 if result["five_xx"] else 0)


if __name__ == "__main__":
    main()
