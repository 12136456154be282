"""A short run of bench/fuzz_http.py (the benchmark sends 10,000): random bodies, query strings, paths,
methods and headers through the real app, and 20,000-character texts of every shape. No 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_fuzzed_requests_never_get_a_5xx():
    script = Path(__file__).resolve().parents[1] / "bench" / "fuzz_http.py"
    done = subprocess.run([sys.executable, str(script), "--requests", "1500", "--quick"], capture_output=True,
                          text=True, timeout=600)
    report = json.loads(done.stdout[done.stdout.index("{"): done.stdout.rindex("}") + 1])
    assert report["five_xx"] == 0, report["failures"]
    assert sum(report["statuses"].values()) >= 1500
    assert {"200", "400", "404"} <= set(report["statuses"]), "the fuzz reaches the views, not only routing"
    assert len(report["long_texts_seconds"]) >= 16
    assert done.returncode == 0
