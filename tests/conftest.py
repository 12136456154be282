"""Shared fixtures. The real model, taxonomy and index load once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nlp_service.app import create_app
from nlp_service.corpus import load_corpus
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.services import Services
from nlp_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Repository data, a private index folder and the real model folder prepared by the set-up command."""
    work = tmp_path_factory.mktemp("nlp")
    return Settings(
        taxonomy_dir=ROOT / "corpus" / "taxonomy",
        corpus_dir=ROOT / "corpus" / "documents",
        index_dir=work / "index",
        model_path=ROOT / "models" / "use-multilingual-v3",
        cache_dir=ROOT / "var" / "cache",
        feedback_db=work / "feedback.sqlite",
        role_model_path=ROOT / "models" / "role-refiner",  # trained by the set-up command (make setup)
        concept_model_path=ROOT / "models" / "concept-detector",  # likewise
        needs_model_path=ROOT / "models" / "needs-reader",  # likewise
    )


@pytest.fixture(scope="session")
def taxonomy(settings: Settings) -> Taxonomy:
    return Taxonomy.from_dir(settings.taxonomy_dir)


@pytest.fixture(scope="session")
def services(settings: Settings, taxonomy: Taxonomy) -> Services:
    """Real jieba, spaCy, sentence-transformers model and faiss index built from the shipped corpus."""
    svc = Services(settings, taxonomy=taxonomy)
    svc.builder().build(load_corpus(settings.corpus_dir))
    return svc


@pytest.fixture(scope="session")
def app(services: Services):
    application = create_app(services=services)
    application.config["TESTING"] = True
    return application


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()
