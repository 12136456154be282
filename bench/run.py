"""Speed benchmarks: tagging, matching, HTTP and rebuild, with medians over repeated runs.

    .venv/bin/python bench/run.py [--quick] [--out bench/results]

Writes bench/results/<timestamp>.json and prints a Markdown table to paste into bench/RESULTS.md.
This 2-core machine is shared and noisy: compare medians and ratios measured in one run.
Synthetic texts and vectors appear only here (for the faiss scaling part), never in the product.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3), "n": len(ordered)}


def corpus_texts() -> dict[str, list[str]]:
    from nlp_service.corpus import load_corpus
    from nlp_service.extract.segment import detect_language

    by_lang: dict[str, list[str]] = {"zh": [], "en": [], "mixed": []}
    for doc in load_corpus(ROOT / "corpus" / "documents"):
        by_lang[detect_language(doc.text)].append(doc.text)
    return by_lang


def bench_library(services, quick: bool) -> dict:
    texts = corpus_texts()
    results: dict = {}
    repeat = 20 if quick else 60
    for lang, items in texts.items():
        sample = items[:repeat]
        seg = [timed(lambda t=t: services.segmenter.segment(t), 1)[0] for t in sample]
        lex = [timed(lambda t=t: services.tagger.lexical.tag_tokens(t, services.segmenter.segment(t)), 1)[0]
               for t in sample]
        full = [timed(lambda t=t: services.tagger.tag(t), 1)[0] for t in sample]
        emb = [timed(lambda t=t: services.embedder.embed([t]), 1)[0] for t in sample]
        results[lang] = {"texts": len(sample), "mean_chars": round(sum(map(len, sample)) / len(sample)),
                         "segment": summary(seg), "lexical_tag": summary(lex), "tag_with_semantic": summary(full),
                         "embed_one": summary(emb)}
    index = services.current_index()
    queries = texts["zh"][:10] + texts["en"][:10]
    results["match_top10"] = summary([timed(lambda q=q: services.matcher.match(index, q, "request", 10), 1)[0]
                                      for q in queries * (1 if quick else 3)])
    return results


def bench_rebuild(services, quick: bool) -> dict:
    from nlp_service.corpus import load_corpus
    from nlp_service.index.store import IndexStore

    documents = load_corpus(ROOT / "corpus" / "documents")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        builder = services.builder()
        builder.store = IndexStore(Path(tmp))
        for _ in range(1 if quick else 3):
            start = time.perf_counter()
            builder.build(documents)
            runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    return {"documents": len(documents), "median_s": round(median, 2), "docs_per_s": round(len(documents) / median, 1)}


def bench_faiss(quick: bool) -> dict:
    from nlp_service.index.vector_index import FaissIndex

    rng = np.random.default_rng(0)
    out = {}
    for n in ((10_000,) if quick else (10_000, 100_000)):
        x = rng.normal(size=(n, 512)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q = x[:20] + 0.01
        index = FaissIndex(512)
        index.add([str(i) for i in range(n)], x)
        faiss_ms = [timed(lambda v=v: index.search(v[None, :], 10), 1)[0] for v in q]
        numpy_ms = [timed(lambda v=v: np.argpartition(-(x @ v), 10)[:10], 1)[0] for v in q]
        out[str(n)] = {"faiss_flat_ip": summary(faiss_ms), "numpy_brute_force": summary(numpy_ms)}
    return out


def bench_http(quick: bool) -> dict:
    """Real gunicorn on 127.0.0.1 with 2 workers; a bounded number of requests from 4 client threads."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).with_name("nlp-service")), "serve", "--port", str(port),
                             "--workers", "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/v1/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        body = json.dumps({"text": "需要一位会做账和报税的志愿者，帮社区食物银行准备年度审计。", "kind": "request",
                           "top_k": 10}).encode()

        def call(path: str, data: bytes | None) -> float:
            request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
            start = time.perf_counter()
            urllib.request.urlopen(request, timeout=30).read()
            return (time.perf_counter() - start) * 1000

        results = {}
        total = 100 if quick else 400
        for name, path, data in (("health", "/v1/health", None), ("match", "/v1/match", body)):
            for _ in range(10):
                call(path, data)  # warm both workers
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                latencies = list(pool.map(lambda _: call(path, data), range(total)))
            elapsed = time.perf_counter() - start
            results[name] = {**summary(latencies), "requests_per_s": round(total / elapsed, 1)}
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 1 minute)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    os.chdir(ROOT)
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    start = time.perf_counter()
    services = Services(load_settings())
    startup = time.perf_counter() - start
    report = {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "services_startup_s": round(startup, 2),
        "library": bench_library(services, args.quick),
        "rebuild": bench_rebuild(services, args.quick),
        "faiss": bench_faiss(args.quick),
        "http": bench_http(args.quick),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / (report["created_at"].replace(":", "") + ".json")
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
