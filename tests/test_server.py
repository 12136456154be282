"""One real server: `nlp-service serve` (gunicorn, app factory, models loaded per worker) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(services, tmp_path_factory):
    port = _free_port()
    env = dict(os.environ)
    settings = services.settings
    for name in ("taxonomy_dir", "corpus_dir", "index_dir", "model_path", "cache_dir"):
        env[f"NLP_SERVICE_{name.upper()}"] = str(getattr(settings, name))
    env["NLP_SERVICE_BODY_TIMEOUT"] = "2"
    cli = Path(sys.executable).with_name("nlp-service")
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = open(log_path, "wb")  # a file, not a pipe: a full pipe would block the logging server
    proc = subprocess.Popen([str(cli), "serve", "--port", str(port), "--workers", "1"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if _call(base + "/v1/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    text = log_path.read_text(errors="replace")
    assert "POST /v1/match -> 200" in text, "the worker logs each request"
    assert "需要会做账" not in text, "request text must never reach the log"


def test_real_server_serves_health_match_and_errors(server, services):
    status, health = _call(server + "/v1/health")
    assert status == 200 and health["index"]["documents"] >= 300
    status, body = _call(server + "/v1/match", {"text": "需要会做账的志愿者", "kind": "request", "top_k": 3})
    assert status == 200 and len(body["matches"]) == 3
    status, body = _call(server + "/v1/match", {"text": "  ", "kind": "request"})
    assert status == 400 and body["error"]["code"] == "invalid_request"


def test_rebuild_is_picked_up_without_restart(server, services):
    before = _call(server + "/v1/health")[1]["index"]["version"]
    from nlp_service.corpus import load_corpus

    services.builder().build(load_corpus(services.settings.corpus_dir)[:40])
    status, after = _call(server + "/v1/health")
    assert status == 200
    # corpus files are an import path into the store: a rebuild publishes everything the store holds
    assert after["index"]["version"] != before and after["index"]["documents"] >= 300


def test_reads_never_fail_while_rebuilds_publish(server, services):
    """Four client threads query the real server while two rebuilds publish new versions."""
    import concurrent.futures
    import threading

    from nlp_service.corpus import load_corpus

    documents = load_corpus(services.settings.corpus_dir)
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def reader() -> None:
        while not stop.is_set() and len(statuses) < 2000:
            status, body = _call(server + "/v1/match", {"text": "需要会做账的志愿者", "kind": "request", "top_k": 3})
            statuses.append(status)
            if status == 200:
                versions.add(body["index"]["version"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(reader) for _ in range(4)]
        try:
            for _ in range(2):
                services.builder().build(documents)
                time.sleep(0.5)
        finally:
            stop.set()
        for future in futures:
            future.result(timeout=60)
    assert statuses and set(statuses) == {200}, f"{len(statuses)} reads, statuses {set(statuses)}"
    assert len(versions) >= 2, "readers should have seen more than one published version"


def test_stalled_bodies_do_not_block_the_server(server):
    """Two clients announce a body and never send it: other requests are still served, and the stalled ones
    get a 408 after the body timeout instead of holding a worker for minutes."""
    host, port = server.removeprefix("http://").split(":")
    stalled = []
    for _ in range(2):
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(b"POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"text\": ")
        stalled.append(sock)
    try:
        started = time.monotonic()
        status, body = _call(server + "/v1/match", {"text": "需要会做账的志愿者", "kind": "request", "top_k": 1})
        assert status == 200 and time.monotonic() - started < 10
        for sock in stalled:
            reply = sock.recv(200)
            assert reply.startswith(b"HTTP/1.1 408"), reply
    finally:
        for sock in stalled:
            sock.close()


def test_acknowledged_writes_survive_kill_9():
    """A short run of bench/kill_writes.py (the benchmark does 50 rounds): 0 acknowledged writes lost."""
    script = Path(__file__).resolve().parents[1] / "bench" / "kill_writes.py"
    done = subprocess.run([sys.executable, str(script), "--rounds", "3", "--quick"], capture_output=True, text=True,
                          timeout=600)
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["acknowledged"] > 0, report
    assert report["lost"] == 0 and report["integrity_problems"] == [], report
    assert done.returncode == 0
