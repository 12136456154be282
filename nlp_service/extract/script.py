"""Traditional to simplified Chinese, character for character, so that offsets stay valid.

Hong Kong, Taiwan and Macau texts ("長者", "義工", "升學") are read by the same vocabulary as mainland ones:
the taxonomy, the role cues and the needs rules match on the simplified copy, and every surface is cut from
the original text. Uses jionlp's conversion table (``jionlp.tra2sim(mode="char")``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re

logger = logging.getLogger(__name__)

_HAN = re.compile(r"[\u3400-\u9fff]")


def to_simplified(text: str) -> str:
    """``text`` with traditional characters replaced by simplified ones (same length; unchanged without Han)."""
    if not _HAN.search(text):
        return text
    simple = load_jionlp().tra2sim(text, mode="char")
    return simple if len(simple) == len(text) else text


def load_jionlp():
    """The ``jionlp`` module. Its first import prints a banner on stdout (and so does ``jiojio``, which it
    loads), which would corrupt ``--json`` output and piped CLI use: the banner goes to the debug log."""
    import sys

    if "jionlp" in sys.modules:
        return sys.modules["jionlp"]
    banner = io.StringIO()
    with contextlib.redirect_stdout(banner):
        import jionlp
    if banner.getvalue().strip():
        logger.debug("jionlp: %s", " | ".join(banner.getvalue().split("\n")).strip(" |"))
    return jionlp
