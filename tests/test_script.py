"""Traditional -> simplified conversion, and that loading its library leaves stdout alone."""

import subprocess
import sys

from nlp_service.extract.script import to_simplified


def test_traditional_text_is_converted_with_the_same_length():
    assert to_simplified("會計師幫忙審計") == "会计师帮忙审计"
    assert to_simplified("plain English") == "plain English"


def test_loading_jionlp_prints_nothing_on_stdout():
    # jionlp (and jiojio under it) print a banner when first imported; piped `--json` output must stay JSON.
    code = "from nlp_service.extract.script import to_simplified; print(to_simplified('漢字'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout == "汉字\n"
