"""Which run owns which field of a dataset: claimed atomically, declared once, checked by a fresh read.

A claim is a document of the collection ``autolabel_field_claims`` in FiftyOne's
database, unique on ``(dataset, field)``: ``{dataset: <dataset id>, field, run:
<uid>, runName: "<namespace>/<name>", role, created}``. ``created`` says whether
the field existed when the run claimed it; only what a run created is ever
removed by it. Inserting the claim is the atomic step: a second run naming the
same labelField, staging, marker or embeddings field gets `FieldTaken`, whose
message names the field and the run holding it. Claiming again with the same
run uid is a no-op, so validation can run any number of times.

The validation step (``python -m worker probe``) claims every field the run
writes and declares the staging, marker and embeddings fields in the dataset's
schema before any shard starts; finalize declares labelField. Declaring is one
conditional ``$push`` on the dataset document (never FiftyOne's read, append and
save of the whole document, which loses fields when processes declare at the
same moment), followed by a fresh read of the document that must show every
field. Workers only check (and, when run by hand without a probe, add what is
missing with the same atomic push).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from contract.worker import Task, WorkerConfig
from runtime.durable import database, retried
from runtime.errors import FatalError

LOG = logging.getLogger(__name__)
CLAIMS_COLLECTION = "autolabel_field_claims"
DECLARE_PASSES = 3


class FieldTaken(FatalError):
    """A field the run needs belongs to another run, or existed before and may not be written."""


@dataclass(frozen=True)
class RunField:
    """A field a run writes; ``declare`` is False for labelField before finalize."""

    name: str
    role: str
    declare: bool = True


def label_type(task: Task) -> Any:
    import fiftyone.core.labels as fol

    return {
        Task.CLASSIFICATION: fol.Classification,
        Task.DETECTION: fol.Detections,
        Task.SEGMENTATION: fol.Segmentation,
    }[task]


def schema_field(spec: RunField, config: WorkerConfig) -> Any:
    """The FiftyOne field object of one run field (also used to serialize values)."""
    import fiftyone.core.fields as fof

    if spec.role in ("staging", "label"):
        return fof.EmbeddedDocumentField(label_type(config.task))
    if spec.role == "marker":
        return fof.StringField()
    return fof.VectorField()


def run_fields(config: WorkerConfig) -> list[RunField]:
    """Every field the run writes, labelField included (declared only at finalize)."""
    fields = [
        RunField(config.staging, "staging"),
        RunField(config.marker_field, "marker"),
        RunField(config.label_field, "label", declare=False),
    ]
    if config.embeddings is not None:
        # New like the others: writing vectors into a user's existing field would overwrite theirs.
        fields.append(RunField(config.embeddings.field, "embeddings"))
    return fields


def _collection(config: WorkerConfig) -> Any:
    collection = database(config.database)[CLAIMS_COLLECTION]
    retried(
        "creating the claims index",
        config.database,
        lambda: collection.create_index([("dataset", 1), ("field", 1)], unique=True, name="dataset_field"),
    )
    return collection


def _holder(collection: Any, dataset_id: str, field: str, config: WorkerConfig) -> dict[str, Any] | None:
    holder: dict[str, Any] | None = retried(
        f"reading the claim on {field!r}",
        config.database,
        lambda: collection.find_one({"dataset": dataset_id, "field": field}),
    )
    return holder


def _taken(dataset: Any, field: str, holder: dict[str, Any] | None) -> FieldTaken:
    if holder is None:
        return FieldTaken(
            f"field {field!r} already exists in dataset {dataset.name!r} and was not created by this run; "
            "choose another labelField, stagingField or spec.model.embeddings.field"
        )
    return FieldTaken(
        f"field {field!r} of dataset {dataset.name!r} belongs to run {holder.get('runName')} "
        f"(uid {holder.get('run')}); choose another labelField, stagingField or embeddings field, "
        "or finalize or discard that run"
    )


def _claim_document(
    dataset_id: str, config: WorkerConfig, name: str, role: str, created: bool
) -> dict[str, Any]:
    return {
        "dataset": dataset_id,
        "field": name,
        "run": config.run.uid,
        "runName": f"{config.run.namespace}/{config.run.name}",
        "role": role,
        "created": created,
        "claimedAt": datetime.now(UTC),
    }


def claim(dataset: Any, config: WorkerConfig, fields: list[RunField]) -> dict[str, bool]:
    """Claims `fields` for the run, all or none; returns ``{field: created}``.

    Raises `FieldTaken` when another run holds one of them, or when one that may
    not exist already does; the claims made by this call are then released.
    """
    from pymongo.errors import DuplicateKeyError

    collection = _collection(config)
    dataset.reload()
    dataset_id = str(dataset._doc.id)
    schema = dataset.get_field_schema()
    made: list[str] = []
    created: dict[str, bool] = {}
    try:
        for spec in sorted(fields, key=lambda f: f.name):
            document = _claim_document(dataset_id, config, spec.name, spec.role, spec.name not in schema)
            try:
                retried(
                    f"claiming field {spec.name!r}",
                    config.database,
                    partial(collection.insert_one, document),
                )
            except DuplicateKeyError:
                holder = _holder(collection, dataset_id, spec.name, config)
                if holder is None or holder.get("run") != config.run.uid:
                    raise _taken(dataset, spec.name, holder) from None
                created[spec.name] = bool(holder.get("created"))
                continue
            if spec.name in schema:
                made.append(spec.name)
                raise _taken(dataset, spec.name, None)
            made.append(spec.name)
            created[spec.name] = bool(document["created"])
    except BaseException:
        if made:
            retried(
                "releasing claims",
                config.database,
                lambda: collection.delete_many(
                    {"dataset": dataset_id, "field": {"$in": made}, "run": config.run.uid}
                ),
            )
        raise
    return created


def claim_aid(dataset: Any, config: WorkerConfig, name: str, existed: bool) -> bool:
    """Claims the name of a review aid (``view:<name>``, ``brain:<key>``); True when the run created it."""
    from pymongo.errors import DuplicateKeyError

    collection = _collection(config)
    document = _claim_document(str(dataset._doc.id), config, name, "aid", not existed)
    try:
        retried(f"claiming {name!r}", config.database, partial(collection.insert_one, document))
    except DuplicateKeyError:
        holder = _holder(collection, str(dataset._doc.id), name, config) or {}
        return holder.get("run") == config.run.uid and bool(holder.get("created"))
    return not existed


def holder_of(dataset: Any, config: WorkerConfig, field: str) -> dict[str, Any] | None:
    """The claim on `field` of `dataset`, whoever holds it."""
    return _holder(_collection(config), str(dataset._doc.id), field, config)


def created_by_run(dataset: Any, config: WorkerConfig, field: str) -> bool:
    """Whether this run holds the claim on `field` and the field did not exist before it."""
    holder = holder_of(dataset, config, field)
    return holder is not None and holder.get("run") == config.run.uid and bool(holder.get("created"))


def held_by_run(dataset: Any, config: WorkerConfig, field: str) -> bool:
    holder = holder_of(dataset, config, field)
    return holder is not None and holder.get("run") == config.run.uid


def release(dataset: Any, config: WorkerConfig, fields: list[str]) -> None:
    """Drops this run's claims on `fields` (never another run's)."""
    collection = _collection(config)
    dataset_id = str(dataset._doc.id)
    retried(
        "releasing claims",
        config.database,
        lambda: collection.delete_many(
            {"dataset": dataset_id, "field": {"$in": fields}, "run": config.run.uid}
        ),
    )


def _declared(config: WorkerConfig, dataset_id: Any) -> dict[str, dict[str, Any]]:
    """The dataset's sample fields as a fresh read of its document shows them."""
    document = retried(
        "reading the dataset's schema",
        config.database,
        lambda: database(config.database).datasets.find_one({"_id": dataset_id}, {"sample_fields": 1}),
    )
    if document is None:
        raise FatalError(f"dataset {config.dataset!r} was deleted")
    return {field["name"]: field for field in document.get("sample_fields") or []}


def declare(dataset: Any, config: WorkerConfig, fields: list[RunField]) -> list[str]:
    """Adds `fields` that are missing from the schema, one atomic push each; returns those it added.

    Then reads the dataset document again (bounded passes) until every field is there.
    """
    import fiftyone.core.odm as foo
    from fiftyone.core.odm.utils import create_field

    datasets = database(config.database).datasets
    dataset_id = dataset._doc.id
    added: list[str] = []
    for _ in range(DECLARE_PASSES):
        present = _declared(config, dataset_id)
        missing = [spec for spec in fields if spec.name not in present]
        if not missing:
            if added:
                dataset.reload()
            return added
        for spec in missing:
            # Noted on the claim first: a field declared and a claim that does not say so means
            # someone else created the field after the claim (finalize then refuses to write into it).
            retried(
                f"noting the declaration of {spec.name!r}",
                config.database,
                partial(
                    _collection(config).update_one,
                    {"dataset": str(dataset_id), "field": spec.name, "run": config.run.uid},
                    {"$set": {"declared": True}},
                ),
            )
            template = schema_field(spec, config)
            field = create_field(
                spec.name,
                type(template),
                embedded_doc_type=getattr(template, "document_type", None),
                created_at=datetime.now(UTC).replace(tzinfo=None),
            )
            document = foo.SampleFieldDocument.from_field(field).to_mongo().to_dict()
            result = retried(
                f"declaring field {spec.name!r}",
                config.database,
                partial(
                    datasets.update_one,
                    {"_id": dataset_id, "sample_fields.name": {"$ne": spec.name}},
                    {"$push": {"sample_fields": document}},
                ),
            )
            if result.modified_count:
                added.append(spec.name)
    present = _declared(config, dataset_id)
    lost = [spec.name for spec in fields if spec.name not in present]
    raise FatalError(
        f"fields {lost} of dataset {config.dataset!r} vanished from its schema again after "
        f"{DECLARE_PASSES} declarations (another process keeps rewriting the dataset document)"
    )


def undeclare(dataset: Any, config: WorkerConfig, field: str) -> None:
    """Removes `field` from the schema with one atomic pull (its values must be gone already)."""
    datasets = database(config.database).datasets
    retried(
        f"dropping field {field!r} from the schema",
        config.database,
        lambda: datasets.update_one({"_id": dataset._doc.id}, {"$pull": {"sample_fields": {"name": field}}}),
    )


def claim_and_declare(dataset: Any, config: WorkerConfig) -> dict[str, bool]:
    """The validation step's part: claim every run field, declare all but labelField, check."""
    fields = run_fields(config)
    created = claim(dataset, config, fields)
    declare(dataset, config, [spec for spec in fields if spec.declare])
    return created
