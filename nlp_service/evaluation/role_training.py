"""Training data and training, from gold files, for the role refiner (nlp_service.extract.role_model), the
concept detector (nlp_service.extract.concept_model) and the deliverable reader (nlp_service.extract.needs_model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from nlp_service.errors import GoldDataError
from nlp_service.evaluation.gold import REFERENCE_DATE, file_hash, load_gold
from nlp_service.extract.role_model import RoleInstance, RoleRefiner
from nlp_service.extract.roles import MATCHING_ROLES, clauses

if TYPE_CHECKING:
    from nlp_service.extract.concept_model import ConceptDetector
    from nlp_service.extract.needs_model import DeliverableReader
    from nlp_service.services import Services

DEFAULT_TRAINING_GOLD = ("corpus/eval/dev.jsonl", "corpus/eval/fresh/*.jsonl")


def default_training_files(root: Path = Path(".")) -> list[Path]:
    """dev.jsonl and every fresh set: never the test part, which only reports numbers."""
    files: list[Path] = []
    for pattern in DEFAULT_TRAINING_GOLD:
        files += sorted(root.glob(pattern))
    return files


def check_training_file(path: Path) -> Path:
    """``path``, unless it is the test part or a held-out set: those only measure."""
    path = Path(path)
    if path.name.startswith("test"):
        raise GoldDataError(f"{path}: the test part only reports numbers; train on dev and fresh sets")
    if path.resolve().parent.name == "heldout":
        raise GoldDataError(f"{path}: the held-out sets (corpus/eval/heldout/) only measure how far rules and "
                            "models generalise; train on dev and fresh sets")
    return path


def role_training_data(services: "Services", gold_files: Sequence[Path], *, batch_size: int = 32,
                       progress: Callable[[int], None] | None = None):
    """Every tag the tagger (rules only) finds in the gold texts whose concept the gold labels, with its gold
    role, and the first tag of each concept the gold does not label at all, on words no gold label covers,
    with role ``None`` (the refiner learns those as context at a lower weight); the text ids group a text's
    tags for cross-validation.

    Without the unlabelled tags the refiner never saw the mentions annotators pass over as no skill of the
    post ("【志愿者招募｜…】", a tool the organisation runs). In 4-fold leave-files-out cross-validation of the
    whole pipeline over the 37 training files, at weight 0.3, they moved tag F1 0.825 -> 0.836 (P 0.773 ->
    0.808) and leaks 369 -> 319 of 1817, role accuracy 0.864 -> 0.861. Taking also the tags on words the
    annotator gave another concept ("会计" labelled bookkeeping, tagged accounting) taught the refiner that
    real needs are context: role accuracy 0.857 (F1 0.837, leaks 309)."""
    instances: list[RoleInstance] = []
    roles: list[str | None] = []
    groups: list[str] = []
    sources: list[dict] = []
    for path, item, result in _tagged_gold(services, gold_files, sources, batch_size, progress):
        spans = clauses(item.text)
        gold = item.roles
        marked = {label.concept_id: label.spans for label in item.labels}
        seen: set[str] = set()
        for tag in result.tags:
            # One instance per gold concept: its first mention, if the annotator marked it. A later
            # mention, or one the annotator did not mark, may play another part than the gold role
            # says ("社工" of the staff beside "社工" asked for). Trained on every marked mention instead,
            # the refiner leaked 13 context/declined concepts of the held-out sets, against 9.
            first = tag.concept_id not in seen
            seen.add(tag.concept_id)
            labelled = tag.concept_id in gold
            # an unlabelled tag on words the annotator gave another concept is a wrong concept, not a context
            passed_over = not labelled and not any(marks and _overlaps(tag, marks) for marks in marked.values())
            if first and (passed_over or labelled and _overlaps(tag, marked.get(tag.concept_id, ()))):
                instances.append(RoleInstance.of(item.text, item.kind or None, tag.start, tag.end, tag.role,
                                                 spans, concept_id=tag.concept_id, category=tag.category))
                roles.append(gold.get(tag.concept_id))
                groups.append(f"{path.name}:{item.id}")
    return instances, roles, groups, sources


def _tagged_gold(services: "Services", gold_files: Sequence[Path], sources: list[dict], batch_size: int,
                 progress: Callable[[int], None] | None):
    """(file, gold item, rule-role tagging by the labels alone) for every text of the training files, in batches;
    each file's name, hash and size go into ``sources``."""
    for path, items in _training_items(services, gold_files, sources):
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            tagged = services.tagger.tag_many([i.text for i in batch], [i.kind or None for i in batch],
                                              reference=REFERENCE_DATE, refine=False, learned=False)
            for item, result in zip(batch, tagged):
                yield path, item, result
            if progress is not None:
                progress(len(batch))


def _training_items(services: "Services", gold_files: Sequence[Path], sources: list[dict]):
    """(file, its gold items) for each training file (never the test part or a held-out set); each file's name,
    hash and size go into ``sources``."""
    for path in gold_files:
        path = check_training_file(path)
        items = load_gold(path, services.taxonomy)
        sources.append({"file": str(path), "sha256": file_hash(path), "texts": len(items)})
        yield path, items


def _overlaps(tag, spans) -> bool:
    return not spans or any(tag.start < end and start < tag.end for start, end in spans)


def train_role_refiner(services: "Services", gold_files: Sequence[Path], *, c: float = 3.0, rule_weight: float = 0.1,
                       concept_weight: float = 0.7, unlabelled_weight: float = 0.3,
                       progress: Callable[[int], None] | None = None) -> RoleRefiner:
    instances, roles, groups, sources = role_training_data(services, gold_files, progress=progress)
    if not any(role is not None for role in roles):
        raise GoldDataError("the gold files hold no labelled tag the tagger finds: nothing to train the role refiner on")
    return RoleRefiner.train(instances, roles, groups, services.embedder.embed, embedder_name=services.embedder.name,
                             sources=sources, c=c, rule_weight=rule_weight, concept_weight=concept_weight,
                             unlabelled_weight=unlabelled_weight)


def concept_training_data(services: "Services", gold_files: Sequence[Path], *, batch_size: int = 32,
                          progress: Callable[[int], None] | None = None):
    """Every clause of the gold texts (as the tagger splits them) with the concepts the gold offers or needs there
    (a span of an offered/needed label touches it); the gold file groups clauses for cross-validation, and
    ``known`` holds the concepts the labels already find in the clause's text.

    Declined and context spans are no target: trained on every role (the organisation's field, what it already
    has), the detector found as many concepts in 4-fold cross-validation over the training files (tag F1 0.817
    either way, labels alone 0.814) but leaked 71 declined/context concepts as offered/needed against 68."""
    clause_texts: list[str] = []
    concepts: list[frozenset[str]] = []
    groups: list[str] = []
    known: list[frozenset[str]] = []
    sources: list[dict] = []
    for path, item, result in _tagged_gold(services, gold_files, sources, batch_size, progress):
        found = frozenset(t.concept_id for t in result.tags)
        for begin, end in services.segmenter.sentences(item.text):
            clause_texts.append(item.text[begin:end])
            concepts.append(frozenset(label.concept_id for label in item.labels if label.role in MATCHING_ROLES
                                      and any(s < end and begin < e for s, e in label.spans)))
            groups.append(path.name)
            known.append(found)
    return clause_texts, concepts, groups, known, sources


def train_concept_detector(services: "Services", gold_files: Sequence[Path], *, c: float = 10.0,
                           threshold: float = 0.3, per_clause: int = 2,
                           progress: Callable[[int], None] | None = None) -> "ConceptDetector":
    data = concept_training_data(services, gold_files, progress=progress)
    return fit_concept_detector(services, data, c=c, threshold=threshold, per_clause=per_clause)


def fit_concept_detector(services: "Services", data, *, c: float = 10.0, threshold: float = 0.3,
                         per_clause: int = 2) -> "ConceptDetector":
    """The detector fitted on :func:`concept_training_data` output (cross-validation included)."""
    from nlp_service.extract.concept_model import ConceptDetector

    clause_texts, concepts, groups, known, sources = data
    if not clause_texts:
        raise GoldDataError("the gold files hold no clause: nothing to train the concept detector on")
    return ConceptDetector.train(clause_texts, concepts, groups, services.embedder.embed,
                                 embedder_name=services.embedder.name, taxonomy_version=services.taxonomy.full_version,
                                 sources=sources, c=c, threshold=threshold, per_clause=per_clause, known=known)


def deliverable_training_data(services: "Services", gold_files: Sequence[Path]):
    """The clauses (as the needs extractor splits them) of every gold request with a needs block: whether each
    holds the request's gold deliverable, the text it belongs to, and its gold file (the cross-validation group)."""
    splitter = services.segmenter.sentences
    clause_texts: list[str] = []
    positive: list[bool] = []
    texts: list[str] = []
    groups: list[str] = []
    sources: list[dict] = []
    for path, items in _training_items(services, gold_files, sources):
        for item in items:
            if item.kind != "request" or item.needs is None:
                continue
            gold = item.needs.get("deliverable")
            span = gold.get("span") if isinstance(gold, dict) else None
            for begin, end in splitter(item.text):
                clause_texts.append(item.text[begin:end])
                positive.append(bool(span and span["start"] < end and begin < span["end"]))
                texts.append(f"{path.name}:{item.id}")
                groups.append(path.name)
    return clause_texts, positive, texts, groups, sources


def train_deliverable_reader(services: "Services", gold_files: Sequence[Path], *, c: float = 3.0,
                             threshold: float = 0.3) -> "DeliverableReader":
    from nlp_service.extract.needs_model import DeliverableReader

    clause_texts, positive, texts, groups, sources = deliverable_training_data(services, gold_files)
    if not clause_texts:
        raise GoldDataError("the gold files hold no request with a needs block: nothing to train the deliverable "
                            "reader on")
    return DeliverableReader.train(clause_texts, positive, texts, groups, services.embedder.embed,
                                   embedder_name=services.embedder.name, sources=sources, c=c, threshold=threshold)
