"""CreateDataset, DescribeDataset, ListDatasets.

CreateDataset reads the file its ``S3Uri`` names (an ``s3://`` object through boto3 and the
standard AWS configuration, or a local file from a folder the operator allows), checks it as a
reconcile would, and declares it: the file under ``data/<flywheel>/``, the dataset in the spec,
one commit. It is COMPLETED when the call returns; a file that fails a check is refused with
the row and the reason, and nothing is declared.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from reconciler import api
from reconciler.api import declaring
from reconciler.api.declaring import DatasetView
from reconciler.core.arns import dataset_arn
from reconciler.core.spec import Dataset
from reconciler.server.context import Answer, Context, Params, arn, idempotent
from reconciler.server.operations.common import (
    check_time_filter,
    spec_validation_error,
    tags_from,
)
from reconciler.server.paging import page
from reconciler.server.protocol import invalid, not_found


def dataset_properties(view: DatasetView) -> dict[str, Any]:
    dataset = view.dataset
    created = view.declared.time if view.declared else None
    props: dict[str, Any] = {
        "DatasetArn": dataset_arn(view.flywheel, dataset.name),
        "DatasetName": dataset.name,
        "DatasetType": dataset.type.value,
        "DatasetS3Uri": dataset.path,
        "Description": dataset.description,
        "Status": "FAILED" if view.problem else "COMPLETED",
        "Message": view.problem,
        "NumberOfDocuments": view.documents,
        "CreationTime": created,
        "EndTime": created,
    }
    return {key: value for key, value in props.items() if value is not None}


def new_dataset(flywheel: str, name: str, dataset_type: str, description: str | None,
                tags: dict[str, str] | None = None) -> Dataset:
    """The dataset CreateDataset declares (and the console's Create dataset), its file under
    ``data/<flywheel>/``; a name or type the spec would refuse is InvalidRequestException."""
    try:
        return Dataset.model_validate({
            "name": name, "type": dataset_type, "path": declaring.dataset_path(flywheel, name),
            "description": description or None, "tags": tags or {}})
    except ValidationError as exc:
        raise spec_validation_error(exc) from None


@idempotent("CreateDataset")
def create_dataset(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    config = params["InputDataConfig"]
    if config.get("DataFormat", "COMPREHEND_CSV") != "COMPREHEND_CSV" or config.get(
            "AugmentedManifests"):
        raise invalid("only DataFormat COMPREHEND_CSV is supported (a CSV file of label,text "
                      "rows)")
    if config.get("EntityRecognizerInputDataConfig") is not None:
        raise invalid("EntityRecognizerInputDataConfig: this flywheel is a DOCUMENT_CLASSIFIER")
    source = config.get("DocumentClassifierInputDataConfig")
    if source is None:
        raise invalid("InputDataConfig.DocumentClassifierInputDataConfig.S3Uri: name the CSV "
                      "file to read")
    spec = api.describe_flywheel(ctx.repo, name).spec_file
    assert spec is not None
    delimiter = source.get("LabelDelimiter")
    if delimiter is not None and delimiter != spec.spec.task.label_delimiter:
        raise invalid(f"LabelDelimiter {delimiter!r}: flywheel {name!r} uses "
                      f"{spec.spec.task.label_delimiter!r} for all its datasets")
    dataset = new_dataset(name, params["DatasetName"], params.get("DatasetType", "TRAIN"),
                          params.get("Description"), tags_from(params.get("Tags")))
    declaring.create_dataset(ctx.repo, name, dataset, source["S3Uri"], ctx.sources)
    return {"DatasetArn": dataset_arn(name, dataset.name)}


def describe_dataset(ctx: Context, params: Params) -> Answer:
    target = arn(params, "DatasetArn", "dataset")
    spec = api.describe_flywheel(ctx.repo, target.name).spec_file
    assert spec is not None
    for view in ctx.repo.catalog.datasets(spec.spec):
        if view.dataset.name == target.child:
            return {"DatasetProperties": dataset_properties(view)}
    raise not_found(f"flywheel {target.name!r} has no dataset named {target.child!r}")


def list_datasets(ctx: Context, params: Params) -> Answer:
    query = {k: v for k, v in (params.get("Filter") or {}).items() if v is not None}
    if params.get("FlywheelArn"):
        names = [arn(params, "FlywheelArn", "flywheel").name]
        specs = [api.describe_flywheel(ctx.repo, names[0])]
    else:
        specs = [v for v in api.list_flywheels(ctx.repo) if v.spec_file is not None]
    listed = []
    for view in specs:
        assert view.spec_file is not None
        for dataset in ctx.repo.catalog.datasets(view.spec_file.spec):
            props = dataset_properties(dataset)
            if any(query.get(k) not in (None, props.get(k)) for k in ("Status", "DatasetType")):
                continue
            if check_time_filter(props.get("CreationTime"), query):
                listed.append(props)
    listed.sort(key=lambda p: p["DatasetArn"])
    chosen, token = page(listed, lambda p: p["DatasetArn"], params, "ListDatasets",
                         {"flywheel": params.get("FlywheelArn"), **query})
    return {"DatasetPropertiesList": chosen, **({"NextToken": token} if token else {})}


OPERATIONS = {
    "CreateDataset": create_dataset,
    "DescribeDataset": describe_dataset,
    "ListDatasets": list_datasets,
}
