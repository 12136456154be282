"""Kept so model folders written before ``packaged.py`` existed still load."""

from nlp_service.index.packaged import UniversalSentenceEncoder, save_packaged_model

__all__ = ["UniversalSentenceEncoder", "save_packaged_model"]
