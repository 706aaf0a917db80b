"""The wire protocol's pure parts: input checks against botocore's model, the error mapping,
paging tokens and idempotency (the HTTP round trips are in tests/e2e/test_http_api.py)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.errors import (
    ConflictError,
    DataError,
    FlywheelError,
    NotFoundError,
    PipelineError,
    QuotaError,
    SpecError,
    TransientError,
)
from reconciler.server.context import Idempotency
from reconciler.server.paging import page
from reconciler.server.protocol import AwsError, from_error, parse_body, validate

FLYWHEEL = "arn:aws:comprehend:local:000000000000:flywheel/demo"


def problem(operation: str, params: dict[str, Any]) -> str:
    with pytest.raises(AwsError) as info:
        validate(operation, params)
    assert info.value.code == "ValidationException"
    return info.value.message


@pytest.mark.parametrize(("operation", "params"), [
    ("ListFlywheels", {}),
    ("ListFlywheels", {"MaxResults": 500, "Filter": {"Status": "ACTIVE"}}),
    ("DescribeFlywheel", {"FlywheelArn": FLYWHEEL}),
    ("TagResource", {"ResourceArn": FLYWHEEL, "Tags": [{"Key": "a", "Value": ""}]}),
    ("CreateDataset", {"FlywheelArn": FLYWHEEL, "DatasetName": "d1", "InputDataConfig": {
        "DocumentClassifierInputDataConfig": {"S3Uri": "data/x.csv"}}}),
    ("ClassifyDocument", {"Text": "hello", "EndpointArn": "arn:aws:comprehend:local:"
                          "000000000000:document-classifier-endpoint/e"}),
], ids=["empty", "filter", "describe", "tags", "local-input", "classify"])
def test_inputs_the_model_allows_pass(operation: str, params: dict[str, Any]) -> None:
    validate(operation, params)


@pytest.mark.parametrize(("operation", "params", "words"), [
    ("DescribeFlywheel", {}, "Value null at 'flywheelArn' failed to satisfy constraint: Member "
     "must not be null"),
    ("DescribeFlywheel", {"FlywheelArn": "x"}, "Member must satisfy regular expression"),
    ("ListFlywheels", {"MaxResults": 501}, "less than or equal to 500"),
    ("ListFlywheels", {"MaxResults": "7"}, "Member must be an integer"),
    ("ListFlywheels", {"MaxResults": True}, "Member must be an integer"),
    ("ListFlywheels", {"Filter": {"Status": "SLEEPING"}}, "enum value set"),
    ("ListFlywheels", {"Extra": 1}, "Unknown member 'Extra'"),
    ("TagResource", {"ResourceArn": FLYWHEEL, "Tags": [{"Value": "x"}]},
     "'tags.1.member.key'"),
    ("TagResource", {"ResourceArn": FLYWHEEL, "Tags": "a"}, "Member must be a list"),
    ("ListFlywheels", {"Filter": {"CreationTimeAfter": "yesterday"}}, "timestamp"),
    ("ClassifyDocument", {"Text": "", "EndpointArn": "arn:aws:comprehend:local:000000000000:"
                          "document-classifier-endpoint/e"}, "greater than or equal to 1"),
], ids=["missing", "pattern", "above-max", "string-for-int", "bool-for-int", "enum", "unknown",
        "nested-path", "not-a-list", "timestamp", "empty-text"])
def test_inputs_the_model_refuses_say_where_and_why(operation: str, params: dict[str, Any],
                                                     words: str) -> None:
    message = problem(operation, params)
    assert message.startswith("1 validation error detected: ")
    assert words in message


def test_several_problems_are_counted_and_the_first_five_listed() -> None:
    tags = [{"Key": "", "Value": "v"} for _ in range(7)]
    message = problem("TagResource", {"ResourceArn": FLYWHEEL, "Tags": tags})
    assert message.startswith("7 validation errors detected: ")
    assert message.endswith("and 2 more")


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", {}), (b"  \n", {}), (b"{}", {}), (b'{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
], ids=["empty", "blank", "object", "nested"])
def test_bodies_that_parse(raw: bytes, expected: dict[str, Any]) -> None:
    assert parse_body(raw) == expected


@pytest.mark.parametrize("raw", [b"[", b"[]", b'"x"', b'{"a": NaN}', b"\xff",
                                 b'{"a":' * 20 + b"1" + b"}" * 20],
                         ids=["broken", "list", "string", "nan", "not-utf8", "too-deep"])
def test_bodies_that_do_not_parse_are_serialization_errors(raw: bytes) -> None:
    with pytest.raises(AwsError) as info:
        parse_body(raw)
    assert info.value.code == "SerializationException" and info.value.status == 400


@pytest.mark.parametrize(("error", "code", "status"), [
    (NotFoundError("x"), "ResourceNotFoundException", 400),
    (ConflictError("x"), "ResourceInUseException", 400),
    (QuotaError("x"), "ResourceLimitExceededException", 400),
    (TransientError("x"), "TooManyRequestsException", 400),
    (SpecError("x"), "InvalidRequestException", 400),
    (DataError("x"), "InvalidRequestException", 400),
    (FlywheelError("x"), "InvalidRequestException", 400),
    (PipelineError("x"), "InternalServerException", 500),
], ids=["not-found", "conflict", "quota", "transient", "spec", "data", "plain", "pipeline"])
def test_the_error_tree_in_comprehends_names(error: FlywheelError, code: str,
                                             status: int) -> None:
    mapped = from_error(error)
    assert (mapped.code, mapped.status) == (code, status)
    assert mapped.body() == {"__type": code, "Message": "x"}


ITEMS = [f"item-{i:02d}" for i in range(7)]


def walk(size: int, items: list[str], query: dict[str, Any] | None = None) -> list[list[str]]:
    pages, token = [], None
    while True:
        params: dict[str, Any] = {"MaxResults": size, **({"NextToken": token} if token else {})}
        chosen, token = page(items, lambda item: item, params, "ListThings", query or {})
        pages.append(chosen)
        if token is None:
            return pages


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_paging_visits_every_item_once_in_order(size: int) -> None:
    pages = walk(size, ITEMS)
    assert [item for chunk in pages for item in chunk] == ITEMS
    assert all(len(chunk) <= size for chunk in pages)
    assert len(pages) == max(1, -(-len(ITEMS) // size))


def test_paging_goes_on_from_its_place_when_the_last_item_shown_is_gone() -> None:
    first, token = page(ITEMS, lambda item: item, {"MaxResults": 3}, "ListThings", {})
    assert first == ITEMS[:3]
    rest = [i for i in ITEMS if i != "item-02"]
    after, _ = page(rest, lambda item: item, {"MaxResults": 3, "NextToken": token},
                    "ListThings", {})
    assert after == ITEMS[3:6]


@pytest.mark.parametrize(("token", "words"), [
    ("garbage!", "not a token this server gave"),
    ("e30", "not a token this server gave"),
    ("x" * 2000, "not a token this server gave"),
], ids=["not-base64", "no-position", "too-long"])
def test_foreign_tokens_are_refused(token: str, words: str) -> None:
    with pytest.raises(AwsError) as info:
        page(ITEMS, lambda item: item, {"NextToken": token}, "ListThings", {})
    assert info.value.code == "InvalidRequestException" and words in info.value.message


def test_a_token_of_another_listing_is_refused() -> None:
    _, token = page(ITEMS, lambda item: item, {"MaxResults": 2}, "ListThings", {})
    with pytest.raises(AwsError, match="another listing"):
        page(ITEMS, lambda item: item, {"NextToken": token}, "ListThings", {"Status": "X"})
    with pytest.raises(AwsError, match="another listing"):
        page(ITEMS, lambda item: item, {"NextToken": token}, "ListOthers", {})


def test_idempotency_replays_the_same_call_and_refuses_the_token_with_other_input() -> None:
    memory = Idempotency(size=2)
    call = {"FlywheelName": "a", "ClientRequestToken": "t1"}
    assert memory.replay("CreateFlywheel", call) is None
    memory.remember("CreateFlywheel", call, {"FlywheelArn": "arn-a"})
    assert memory.replay("CreateFlywheel", dict(call)) == {"FlywheelArn": "arn-a"}
    assert memory.replay("CreateDataset", call) is None  # tokens are per operation
    with pytest.raises(AwsError) as info:
        memory.replay("CreateFlywheel", {**call, "FlywheelName": "b"})
    assert info.value.code == "IdempotentParameterMismatchException"
    assert memory.replay("CreateFlywheel", {"FlywheelName": "a"}) is None  # no token: no replay
    for token in ("t2", "t3"):
        memory.remember("CreateFlywheel", {"ClientRequestToken": token}, {})
    assert memory.replay("CreateFlywheel", call) is None  # bounded: the oldest was dropped
