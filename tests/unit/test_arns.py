"""ARNs: what is built reads back, other regions and accounts name the same resource, and
anything else is a one-line ValueError."""

from __future__ import annotations

import pytest

from reconciler.core.arns import (
    Arn,
    dataset_arn,
    endpoint_arn,
    flywheel_arn,
    model_arn,
    parse_arn,
)


@pytest.mark.parametrize(("arn", "expected"), [
    (flywheel_arn("demo"), Arn("flywheel", "demo")),
    (dataset_arn("demo", "train-1"), Arn("dataset", "demo", "train-1")),
    (model_arn("demo", "v3"), Arn("model", "demo", "v3")),
    (endpoint_arn("ep-1"), Arn("endpoint", "ep-1")),
    ("arn:aws:comprehend:us-east-1:123456789012:flywheel/demo", Arn("flywheel", "demo")),
    ("arn:aws-cn:comprehend:cn-north-1:123456789012:flywheel/demo/dataset/d",
     Arn("dataset", "demo", "d")),
], ids=["flywheel", "dataset", "model", "endpoint", "other-region", "other-partition"])
def test_arns_read_back(arn: str | None, expected: Arn) -> None:
    assert arn is not None
    assert parse_arn(arn) == expected


@pytest.mark.parametrize(("arn", "words"), [
    ("demo", "is not a Comprehend ARN"),
    ("arn:aws:s3:::bucket", "is not a Comprehend ARN"),
    ("arn:aws:comprehend:local:000000000000:flywheel/-bad", "is not a Comprehend ARN"),
    ("arn:aws:comprehend:local:000000000000:flywheel/a/b/c", "is not a Comprehend ARN"),
    ("arn:aws:comprehend:local:000000000000:entity-recognizer/x", "names no resource"),
    ("arn:aws:comprehend:local:000000000000:" + "flywheel/" + "a" * 300, "..."),
], ids=["bare-name", "other-service", "bad-name", "too-deep", "unknown-kind", "too-long"])
def test_malformed_arns_are_one_line_errors(arn: str, words: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_arn(arn)
    message = str(info.value)
    assert words in message
    assert "\n" not in message and len(message) < 300


def test_an_arn_of_another_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="is not a flywheel ARN"):
        parse_arn(dataset_arn("demo", "d"), "flywheel")
    assert parse_arn(dataset_arn("demo", "d"), "flywheel", "dataset").kind == "dataset"
