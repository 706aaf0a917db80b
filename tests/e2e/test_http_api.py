"""The Comprehend-compatible API end to end: real boto3 over loopback against `flywheel serve`
on a real reconciled repository, every write a real git commit, iterations run by the real watch
daemon the server starts. Names are distinct per test: the tests share one server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from api_harness import (
    ARN,
    ApiServer,
    aws,
    commits,
    incoming,
    reconciled_repo,
    train_rows,
    wait_for,
)
from botocore.exceptions import ClientError
from conftest import git

FLYWHEEL = f"{ARN}flywheel/sections"
ROLE = "arn:aws:iam::123456789012:role/flywheel"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = reconciled_repo(tmp_path_factory.mktemp("api") / "repo")
    with ApiServer(root) as running:
        yield running


@pytest.fixture
def comprehend(server: ApiServer) -> Any:
    return server.client()


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**params)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def create(comprehend: Any, name: str, **extra: Any) -> str:
    params = {"FlywheelName": name, "DataAccessRoleArn": ROLE,
              "DataLakeS3Uri": "s3://flywheel-lake/prefix", "ModelType": "DOCUMENT_CLASSIFIER",
              "TaskConfig": {"LanguageCode": "en", "DocumentClassificationConfig": {
                  "Mode": "MULTI_CLASS", "Labels": list(("database", "games", "mail",
                                                         "sound"))}}, **extra}
    arn: str = comprehend.create_flywheel(**params)["FlywheelArn"]
    return arn


# reading -----------------------------------------------------------------------------------


def test_list_and_describe_answer_in_comprehends_shapes(comprehend: Any) -> None:
    listed = comprehend.list_flywheels()["FlywheelSummaryList"]
    summary = next(s for s in listed if s["FlywheelArn"] == FLYWHEEL)
    assert summary["Status"] == "ACTIVE" and summary["ModelType"] == "DOCUMENT_CLASSIFIER"
    props = comprehend.describe_flywheel(FlywheelArn=FLYWHEEL)["FlywheelProperties"]
    assert props["TaskConfig"]["DocumentClassificationConfig"]["Labels"] == [
        "database", "games", "mail", "sound"]
    assert props["LatestFlywheelIteration"] == summary["LatestFlywheelIteration"]
    history = comprehend.list_flywheel_iteration_history(FlywheelArn=FLYWHEEL)
    first = history["FlywheelIterationPropertiesList"][-1]
    assert first["Status"] == "COMPLETED"
    assert 0.0 < first["TrainedModelMetrics"]["AverageF1Score"] <= 1.0
    assert first["TrainedModelArn"] == f"{ARN}document-classifier/sections/version/v1"
    one = comprehend.describe_flywheel_iteration(
        FlywheelArn=FLYWHEEL, FlywheelIterationId=first["FlywheelIterationId"])
    assert one["FlywheelIterationProperties"] == first


def test_the_aws_cli_prints_the_wire_shape_and_exits_255_on_errors(server: ApiServer) -> None:
    done = aws(server.url, "list-flywheels")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["FlywheelSummaryList"]
    assert any(s["FlywheelArn"] == FLYWHEEL for s in listed)
    assert isinstance(listed[0]["CreationTime"], float)  # epoch seconds, as AWS sends them
    missing = aws(server.url, "describe-flywheel", "--flywheel-arn", f"{ARN}flywheel/nope")
    assert missing.returncode == 255
    assert "(ResourceNotFoundException) when calling the DescribeFlywheel operation" in \
        missing.stderr
    assert "no flywheel named 'nope'" in missing.stderr


@pytest.mark.parametrize(("params", "code", "words"), [
    ({"FlywheelArn": "not-an-arn"}, "ValidationException", "failed to satisfy constraint"),
    ({"FlywheelArn": f"{ARN}flywheel/absent"}, "ResourceNotFoundException", "absent"),
], ids=["malformed-arn", "unknown-flywheel"])
def test_describe_errors_have_comprehends_names(comprehend: Any, params: dict[str, Any],
                                                code: str, words: str) -> None:
    found, message = error_of(comprehend.describe_flywheel, **params)
    assert found == code and words in message


def test_datasets_list_with_counts_and_the_commit_time(comprehend: Any) -> None:
    listed = comprehend.list_datasets(FlywheelArn=FLYWHEEL)["DatasetPropertiesList"]
    by_name = {d["DatasetName"]: d for d in listed}
    assert by_name["train-1"]["NumberOfDocuments"] == 60
    assert by_name["test"]["DatasetType"] == "TEST"
    assert all(d["Status"] == "COMPLETED" for d in listed)
    tests = comprehend.list_datasets(FlywheelArn=FLYWHEEL, Filter={"DatasetType": "TEST"})
    assert [d["DatasetName"] for d in tests["DatasetPropertiesList"]] == ["test"]
    one = comprehend.describe_dataset(DatasetArn=by_name["test"]["DatasetArn"])
    assert one["DatasetProperties"]["CreationTime"] == by_name["test"]["CreationTime"]


# creating and paging -----------------------------------------------------------------------


def test_create_flywheel_commits_a_spec_that_describe_reads_back(server: ApiServer,
                                                                  comprehend: Any) -> None:
    security = {"ModelKmsKeyId": "key-1", "VpcConfig": {"SecurityGroupIds": ["sg-1"],
                                                        "Subnets": ["subnet-1"]}}
    arn = create(comprehend, "created-1", DataSecurityConfig=security,
                 Tags=[{"Key": "team", "Value": "nlp"}])
    assert arn == f"{ARN}flywheel/created-1"
    assert commits(server.root)[0] == "CreateFlywheel created-1"
    spec = yaml.safe_load((server.root / "specs/created-1.yaml").read_text("utf-8"))
    assert spec["task"]["labels"] == ["database", "games", "mail", "sound"]
    props = comprehend.describe_flywheel(FlywheelArn=arn)["FlywheelProperties"]
    assert props["DataAccessRoleArn"] == ROLE
    assert props["DataLakeS3Uri"] == "s3://flywheel-lake/prefix"
    assert props["DataSecurityConfig"] == security
    assert "CreationTime" in props
    tags = comprehend.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert tags == [{"Key": "team", "Value": "nlp"}]
    code, message = error_of(comprehend.create_flywheel, FlywheelName="created-1",
                             DataAccessRoleArn=ROLE, DataLakeS3Uri="s3://b-1/x",
                             ModelType="DOCUMENT_CLASSIFIER",
                             TaskConfig={"LanguageCode": "en", "DocumentClassificationConfig": {
                                 "Mode": "MULTI_CLASS", "Labels": ["a", "b"]}})
    assert code == "ResourceInUseException" and "exists already" in message


def test_a_retried_create_with_the_same_token_answers_the_same(server: ApiServer,
                                                               comprehend: Any) -> None:
    before = len(commits(server.root))
    first = create(comprehend, "retried-1", ClientRequestToken="token-1")
    again = create(comprehend, "retried-1", ClientRequestToken="token-1")
    assert first == again
    assert len(commits(server.root)) == before + 1


@pytest.mark.parametrize(("extra", "code", "words"), [
    ({"ModelType": "ENTITY_RECOGNIZER"}, "InvalidRequestException", "not supported yet"),
    ({"ActiveModelArn": f"{ARN}document-classifier/sections/version/v1"},
     "InvalidRequestException", "ActiveModelArn at creation"),
    ({"FlywheelName": "-bad"}, "ValidationException", "flywheelName"),
    ({"TaskConfig": {"LanguageCode": "ja", "DocumentClassificationConfig": {
        "Mode": "MULTI_CLASS", "Labels": ["a", "b"]}}}, "UnsupportedLanguageException", "ja"),
], ids=["entity-recognizer", "existing-model", "bad-name", "language"])
def test_create_flywheel_refuses_what_it_cannot_do(server: ApiServer, comprehend: Any,
                                                   extra: dict[str, Any], code: str,
                                                   words: str) -> None:
    before = commits(server.root)
    with pytest.raises(ClientError) as info:
        name = extra.pop("FlywheelName", "refused-1")
        create(comprehend, name, **extra)
    error = info.value.response["Error"]
    assert error["Code"] == code and words in error["Message"]
    assert commits(server.root) == before


@pytest.mark.parametrize(("target", "body", "status", "code", "words"), [
    ("CreateFlywheel", b'{"FlywheelName": "x", "Unknown": 1}', 400, "ValidationException",
     "Unknown member 'Unknown'"),
    ("ListFlywheels", b'{"MaxResults": 0}', 400, "ValidationException", "greater than or equal"),
    ("ListFlywheels", b'{"MaxResults": ', 400, "SerializationException", "not valid JSON"),
    ("ListFlywheels", b'[1]', 400, "SerializationException", "JSON object"),
    ("DetectSentiment", b'{}', 400, "UnknownOperationException", "not served here"),
    ("ListFlywheels", b'{"a": ' * 40 + b"1" + b"}" * 40, 400, "SerializationException",
     "nested deeper"),
], ids=["unknown-member", "out-of-range", "not-json", "not-an-object", "unknown-operation",
        "too-deep"])
def test_bad_requests_get_the_aws_error_shape(server: ApiServer, target: str, body: bytes,
                                              status: int, code: str, words: str) -> None:
    before = commits(server.root)
    answer = _raw(server, target, body)
    assert answer[0] == status
    assert answer[1]["__type"] == code and words in answer[1]["Message"]
    assert answer[2] == code
    assert commits(server.root) == before


def test_a_body_over_the_bound_is_refused_before_it_is_read(server: ApiServer) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/")
    connection.putheader("X-Amz-Target", "Comprehend_20171127.ListFlywheels")
    connection.putheader("Content-Length", str(7 * 1024 * 1024))
    connection.endheaders()  # the body is never sent: the server answers from the header
    answer = connection.getresponse()
    data = json.loads(answer.read())
    assert (answer.status, data["__type"], answer.headers["X-Amzn-ErrorType"]) == (
        413, "RequestEntityTooLargeException", "RequestEntityTooLargeException")
    connection.close()


def _raw(server: ApiServer, operation: str, body: bytes) -> tuple[int, dict[str, Any], str]:
    """One request by hand (what botocore would refuse to send): status, body, error header."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + "/", body, headers={
        "X-Amz-Target": f"Comprehend_20171127.{operation}",
        "Content-Type": "application/x-amz-json-1.1"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("X-Amzn-ErrorType", "")


def test_list_flywheels_pages_with_next_token_and_filters(comprehend: Any) -> None:
    for index in range(3):
        create(comprehend, f"paged-{index}")
    everything = [s["FlywheelArn"] for s in comprehend.list_flywheels()["FlywheelSummaryList"]]
    seen: list[str] = []
    token = None
    while True:
        page = comprehend.list_flywheels(MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["FlywheelSummaryList"]) <= 2
        seen += [s["FlywheelArn"] for s in page["FlywheelSummaryList"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == everything and len(set(seen)) == len(seen) >= 4
    first = comprehend.list_flywheels(MaxResults=1)["NextToken"]
    code, message = error_of(comprehend.list_flywheels, NextToken=first,
                             Filter={"Status": "ACTIVE"})
    assert code == "InvalidRequestException" and "another listing" in message
    code, _ = error_of(comprehend.list_flywheels, Filter={"Status": "ACTIVE",
                                                          "CreationTimeAfter": 0})
    assert code == "InvalidFilterException"


# writing desired state, and the reconciler acting on it ------------------------------------


def test_update_flywheel_pins_the_active_model_as_a_commit(server: ApiServer,
                                                           comprehend: Any) -> None:
    version = f"{ARN}document-classifier/sections/version/v1"
    answer = comprehend.update_flywheel(FlywheelArn=FLYWHEEL, ActiveModelArn=version)
    assert answer["FlywheelProperties"]["ActiveModelArn"] == version
    assert commits(server.root)[0] == "UpdateFlywheel sections: pin activeModel to v1"
    assert "activeModel: v1" in (server.root / "specs/sections.yaml").read_text("utf-8")
    wait_for(lambda: comprehend.describe_flywheel(FlywheelArn=FLYWHEEL)[
        "FlywheelProperties"].get("ActiveModelArn") == version)
    code, _ = error_of(comprehend.update_flywheel, FlywheelArn=FLYWHEEL,
                       ActiveModelArn=f"{ARN}document-classifier/sections/version/v99")
    assert code == "ResourceNotFoundException"
    code, _ = error_of(comprehend.update_flywheel, FlywheelArn=FLYWHEEL,
                       ActiveModelArn=f"{ARN}document-classifier/other/version/v1")
    assert code == "InvalidRequestException"


def test_a_dataset_with_a_bad_row_is_refused_and_nothing_is_declared(
        server: ApiServer, comprehend: Any) -> None:
    rows = [*train_rows(2, skip=40), ("no-such-label", "a document with an unknown label")]
    source = incoming(server.root, "bad.csv", rows)
    before = commits(server.root)
    code, message = error_of(comprehend.create_dataset, FlywheelArn=FLYWHEEL,
                             DatasetName="bad-1", InputDataConfig={
                                 "DocumentClassifierInputDataConfig": {"S3Uri": source}})
    assert code == "InvalidRequestException"
    assert message.startswith(f"{source}:{len(rows)}: ") and "no-such-label" in message
    assert commits(server.root) == before
    assert not (server.root / "data/sections/bad-1.csv").exists()
    code, message = error_of(comprehend.create_dataset, FlywheelArn=FLYWHEEL,
                             DatasetName="outside-1", InputDataConfig={
                                 "DocumentClassifierInputDataConfig": {"S3Uri": "/etc/passwd"}})
    assert code == "InvalidRequestException" and "local files are read only from data/" in message


def test_create_dataset_then_start_iteration_runs_it_to_completion(
        server: ApiServer, comprehend: Any) -> None:
    arn = create(comprehend, "iterated-1")
    assert "trigger: request" in (server.root / "specs/iterated-1.yaml").read_text("utf-8")
    source = incoming(server.root, "iterated.csv", train_rows(15, skip=15))
    dataset = comprehend.create_dataset(
        FlywheelArn=arn, DatasetName="train-1", DatasetType="TRAIN",
        Description="fifteen of each", Tags=[{"Key": "source", "Value": "upload"}],
        InputDataConfig={"DataFormat": "COMPREHEND_CSV",
                         "DocumentClassifierInputDataConfig": {"S3Uri": source}})["DatasetArn"]
    assert commits(server.root)[0] == "CreateDataset iterated-1/train-1 (TRAIN, 60 documents)"
    props = comprehend.describe_dataset(DatasetArn=dataset)["DatasetProperties"]
    assert props["NumberOfDocuments"] == 60 and props["Description"] == "fifteen of each"
    code, _ = error_of(comprehend.create_dataset, FlywheelArn=arn, DatasetName="train-1",
                       InputDataConfig={"DocumentClassifierInputDataConfig": {"S3Uri": source}})
    assert code == "ResourceInUseException"
    time.sleep(2)  # the daemon has seen the commit: a Comprehend flywheel waits to be asked
    assert comprehend.list_flywheel_iteration_history(
        FlywheelArn=arn)["FlywheelIterationPropertiesList"] == []
    iteration = comprehend.start_flywheel_iteration(FlywheelArn=arn)["FlywheelIterationId"]
    code, _ = error_of(comprehend.start_flywheel_iteration, FlywheelArn=arn)
    assert code == "ResourceInUseException"
    statuses: list[str] = []

    def finished() -> dict[str, Any] | None:
        found = comprehend.describe_flywheel_iteration(
            FlywheelArn=arn, FlywheelIterationId=iteration)["FlywheelIterationProperties"]
        if not statuses or statuses[-1] != found["Status"]:
            statuses.append(found["Status"])
        return found if found["Status"] in ("COMPLETED", "FAILED") else None

    done = wait_for(finished, timeout=180, interval=0.2)
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert statuses[0] == "TRAINING" and statuses[-1] == "COMPLETED"
    assert done["FlywheelIterationId"] == iteration
    assert done["TrainedModelArn"] == f"{ARN}document-classifier/iterated-1/version/v1"
    code, message = error_of(comprehend.start_flywheel_iteration, FlywheelArn=arn)
    assert code == "InvalidRequestException" and "no new data" in message


# endpoints and tags ------------------------------------------------------------------------


def test_an_endpoint_follows_the_flywheel_and_classifies(server: ApiServer,
                                                          comprehend: Any) -> None:
    version = f"{ARN}document-classifier/sections/version/v1"
    comprehend.update_flywheel(FlywheelArn=FLYWHEEL, ActiveModelArn=version)
    wait_for(lambda: comprehend.describe_flywheel(FlywheelArn=FLYWHEEL)[
        "FlywheelProperties"].get("ActiveModelArn") == version)
    endpoint = comprehend.create_endpoint(EndpointName="sections-ep", FlywheelArn=FLYWHEEL,
                                          DesiredInferenceUnits=1)
    assert endpoint["ModelArn"] == version
    assert (server.root / "endpoints/sections-ep.yaml").is_file()
    props = comprehend.describe_endpoint(EndpointArn=endpoint["EndpointArn"])
    assert props["EndpointProperties"]["Status"] == "IN_SERVICE"
    answer = comprehend.classify_document(EndpointArn=endpoint["EndpointArn"],
                                          Text="a fast SQL database server")
    classes = answer["Classes"]
    assert classes[0]["Name"] == "database"
    assert abs(sum(c["Score"] for c in classes) - 1.0) < 1e-6
    assert [c["Score"] for c in classes] == sorted((c["Score"] for c in classes), reverse=True)
    code, _ = error_of(comprehend.classify_document, EndpointArn=endpoint["EndpointArn"],
                       Text="x" * 10_001)
    assert code == "TextSizeLimitExceededException"
    code, _ = error_of(comprehend.delete_flywheel, FlywheelArn=FLYWHEEL)
    assert code == "ResourceInUseException"
    listed = comprehend.list_endpoints()["EndpointPropertiesList"]
    assert [e["EndpointArn"] for e in listed] == [endpoint["EndpointArn"]]
    comprehend.delete_endpoint(EndpointArn=endpoint["EndpointArn"])
    assert not (server.root / "endpoints/sections-ep.yaml").exists()
    code, _ = error_of(comprehend.describe_endpoint, EndpointArn=endpoint["EndpointArn"])
    assert code == "ResourceNotFoundException"


def test_update_endpoint_switches_between_a_version_and_the_flywheel(
        server: ApiServer, comprehend: Any) -> None:
    version = f"{ARN}document-classifier/sections/version/v1"
    endpoint = comprehend.create_endpoint(EndpointName="pinned-ep", ModelArn=version,
                                          DesiredInferenceUnits=1)["EndpointArn"]
    props = comprehend.describe_endpoint(EndpointArn=endpoint)["EndpointProperties"]
    assert props["ModelArn"] == version and "FlywheelArn" not in props
    answer = comprehend.update_endpoint(EndpointArn=endpoint, FlywheelArn=FLYWHEEL,
                                        DesiredInferenceUnits=2)
    assert answer["DesiredModelArn"].startswith(f"{ARN}document-classifier/sections/version/")
    assert commits(server.root)[0] == "UpdateEndpoint pinned-ep"
    props = comprehend.describe_endpoint(EndpointArn=endpoint)["EndpointProperties"]
    assert props["FlywheelArn"] == FLYWHEEL and props["DesiredInferenceUnits"] == 2
    code, _ = error_of(comprehend.update_endpoint, EndpointArn=endpoint, FlywheelArn=FLYWHEEL,
                       DesiredModelArn=version)
    assert code == "InvalidRequestException"
    comprehend.delete_endpoint(EndpointArn=endpoint)


@pytest.mark.parametrize("kind", ["flywheel", "dataset"])
def test_tags_are_declared_committed_and_listed(server: ApiServer, comprehend: Any,
                                                kind: str) -> None:
    arn = FLYWHEEL if kind == "flywheel" else f"{FLYWHEEL}/dataset/test"
    comprehend.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"},
                                                   {"Key": "b", "Value": "2"}])
    assert commits(server.root)[0].startswith("TagResource sections")
    comprehend.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert comprehend.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "b", "Value": "2"}]
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    code, _ = error_of(comprehend.tag_resource, ResourceArn=arn, Tags=too_many)
    assert code == "TooManyTagsException"


def test_delete_flywheel_removes_the_spec_and_keeps_the_lake(server: ApiServer,
                                                             comprehend: Any) -> None:
    arn = create(comprehend, "deleted-1")
    comprehend.delete_flywheel(FlywheelArn=arn)
    assert commits(server.root)[0] == "DeleteFlywheel deleted-1"
    assert not (server.root / "specs/deleted-1.yaml").exists()
    code, _ = error_of(comprehend.describe_flywheel, FlywheelArn=arn)
    assert code == "ResourceNotFoundException"
    assert git(server.root, "status", "--porcelain", "--", "specs") == ""


def test_the_spec_keeps_every_line_a_person_wrote(server: ApiServer) -> None:
    text = (server.root / "specs/sections.yaml").read_text("utf-8")
    assert text.startswith("# A small flywheel of the bundled Debian sections data")
    assert "  algorithm: complement-nb\n" in text
