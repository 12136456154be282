"""Traditional to simplified Chinese, character for character, so that offsets stay valid.

Hong Kong, Taiwan and Macau texts ("長者", "義工", "升學") are read by the same vocabulary as mainland ones:
the taxonomy, the role cues and the needs rules match on the simplified copy, and every surface is cut from
the original text. Uses jionlp's conversion table (``jionlp.tra2sim(mode="char")``).
"""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u9fff]")


def to_simplified(text: str) -> str:
    """``text`` with traditional characters replaced by simplified ones (same length; unchanged without Han)."""
    if not _HAN.search(text):
        return text
    import jionlp

    simple = jionlp.tra2sim(text, mode="char")
    return simple if len(simple) == len(text) else text
