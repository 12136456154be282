"""Acknowledged writes survive kill -9 of the server: write documents over HTTP, SIGKILL every server
process at a random moment, restart, and check that every acknowledged write is in the store.

    .venv/bin/python bench/kill_writes.py --rounds 50        # the acceptance run (results to bench/results/)
    .venv/bin/python bench/kill_writes.py --rounds 3 --quick  # what the test suite runs

Traffic goes to 127.0.0.1 only; loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "kill-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: dict | None = None, method: str | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def start_server(env: dict[str, str], port: int, log) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("nlp-service")
    proc = subprocess.Popen([str(cli), "serve", "--port", str(port), "--workers", "2"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if call(f"http://127.0.0.1:{port}/v1/health", timeout=2)[0] == 200:
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("server did not start")


def run(rounds: int, work: Path, seed: int = 1) -> dict:
    rng = random.Random(seed)
    index_dir = work / "index"
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    lines = (ROOT / "corpus" / "documents" / "tech_data_design_media.jsonl").read_text(encoding="utf-8").splitlines()
    (corpus / "seed.jsonl").write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    env = dict(os.environ)
    env.update({
        "NLP_SERVICE_INDEX_DIR": str(index_dir), "NLP_SERVICE_CORPUS_DIR": str(corpus),
        "NLP_SERVICE_WRITE_TOKENS": TOKEN, "NLP_SERVICE_TAXONOMY_DIR": str(ROOT / "corpus" / "taxonomy"),
        "NLP_SERVICE_MODEL_PATH": str(ROOT / "models" / "use-multilingual-v3"),
        "NLP_SERVICE_CACHE_DIR": str(ROOT / "var" / "cache"),
        "NLP_SERVICE_CAUSES_FILE": str(ROOT / "corpus" / "needs" / "causes.jsonl"),
    })
    cli = Path(sys.executable).with_name("nlp-service")
    subprocess.run([str(cli), "rebuild"], env=env, check=True, capture_output=True)
    acknowledged: list[str] = []
    errors: list[str] = []
    log = open(work / "server.log", "ab")
    counter = 0
    for round_no in range(rounds):
        port = free_port()
        proc = start_server(env, port, log)
        stop = threading.Event()

        def writer() -> None:
            nonlocal counter
            while not stop.is_set():
                counter += 1
                doc_id = f"kill-{round_no}-{counter}"
                body = {"kind": "volunteer", "text": f"会计师，可以帮忙做账和报税，第{counter}号测试档案。"}
                try:
                    status, _ = call(f"http://127.0.0.1:{port}/v1/documents/{doc_id}", body, method="PUT", timeout=10)
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, http.client.HTTPException) as exc:
                    errors.append(f"{doc_id}: {type(exc).__name__} {exc}")
                    continue  # the server died mid-request: this write was never acknowledged
                if status in (200, 201):
                    acknowledged.append(doc_id)
                else:
                    errors.append(f"{doc_id}: HTTP {status}")

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 3.0))
        os.killpg(proc.pid, signal.SIGKILL)  # every gunicorn process at once, mid-write
        proc.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    log.close()
    sys.path.insert(0, str(ROOT))
    from nlp_service.store.documents import DocumentStore

    store = DocumentStore.open(index_dir / "documents.sqlite")
    missing = [doc_id for doc_id in acknowledged if store.get(doc_id) is None]
    problems = store.integrity_check()
    store.close()
    return {"rounds": rounds, "acknowledged": len(acknowledged), "lost": len(missing), "lost_ids": missing[:20],
            "integrity_problems": problems, "failed_writes": len(errors), "failed_examples": errors[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="Do not write a results file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill-writes-") as tmp:
        result = run(args.rounds, Path(tmp))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if not args.quick:
        out = ROOT / "bench" / "results" / f"kill-writes-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {out}")
    sys.exit(1 if result["lost"] or result["integrity_problems"] else 0)


if __name__ == "__main__":
    main()
