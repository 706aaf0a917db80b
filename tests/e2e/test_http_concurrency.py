"""Concurrent writers through the real `flywheel serve`: real boto3 clients in threads that
start together (a barrier), against one real reconciled repository. Every write is a git
commit under the desired-state lock, so concurrent writers give one commit each or a clear
conflict, never a lost update, a spec that does not load, or a stray file.

One server without the watch daemon for the write races (no reconcile commits in between);
one test with the daemon committing a policy write-back while the API commits tags."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_harness import (
    ARN,
    ApiServer,
    commits,
    incoming,
    reconciled_repo,
    train_rows,
    wait_for,
)
from api_harness import (
    test_rows as holdout_rows,
)
from botocore.exceptions import ClientError
from conftest import commit, git, write_csv

from reconciler.adapters.loader import load_specs

FLYWHEEL = f"{ARN}flywheel/sections"
ROLE = "arn:aws:iam::123456789012:role/"
LABELS = ["database", "games", "mail", "sound"]
#: What a concurrent writer may answer besides success: a conflict, said as such.
CLEAR_CONFLICTS = ("ResourceInUseException", "TooManyRequestsException")

Outcome = tuple[str, Any]  # ("ok", answer) or (error code, message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = reconciled_repo(tmp_path_factory.mktemp("concurrency") / "repo")
    with ApiServer(root, watch=False) as running:
        yield running


def together(server: ApiServer, calls: list[Callable[[Any], Any]]) -> list[Outcome]:
    """Run each call in its own thread with its own boto3 client, all released at once.

    The clients are made here, one after another: boto3's default session is not safe to make
    clients from in several threads at the same time (using one client per thread is)."""
    clients = [server.client() for _ in calls]
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> Outcome:
        barrier.wait(timeout=30)
        try:
            return "ok", calls[index](clients[index])
        except ClientError as exc:
            error = exc.response["Error"]
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            return error["Code"], f"{status}: {error['Message']}"

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, range(len(calls))))


def spec_of(root: Path, name: str = "sections", revision: str | None = None) -> dict[str, Any]:
    """The spec as committed (``revision``) or on disk, parsed; it must be a mapping."""
    path = f"specs/{name}.yaml"
    text = (git(root, "show", f"{revision}:{path}") if revision
            else (root / path).read_text("utf-8"))
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and data["name"] == name, text
    return data


def assert_specs_valid(root: Path) -> None:
    """Every spec loads as the project loads it (``flywheel validate`` would also check data a
    new API flywheel does not have yet), and none has uncommitted changes."""
    loaded, errors = load_specs(root)
    assert errors == [] and loaded
    assert git(root, "status", "--porcelain", "--", "specs") == ""


def new_commits(root: Path, before: list[str]) -> list[str]:
    """Commit hashes (oldest first) made since the log was ``before`` (subjects)."""
    hashes = git(root, "log", "--format=%H").splitlines()
    return list(reversed(hashes[:len(hashes) - len(before)]))


def subject(root: Path, revision: str) -> str:
    return git(root, "log", "-1", "--format=%s", revision)


# 1. tags ------------------------------------------------------------------------------------


def test_five_concurrent_tag_writers_all_land(server: ApiServer) -> None:
    before = commits(server.root)
    keys = [f"writer-{i}" for i in range(5)]
    outcomes = together(server, [
        (lambda c, k=key: c.tag_resource(ResourceArn=FLYWHEEL, Tags=[{"Key": k, "Value": k}]))
        for key in keys])
    # The lock waits 30 s and a commit takes milliseconds: every writer gets its turn.
    assert [code for code, _ in outcomes] == ["ok"] * 5, outcomes
    tags = server.client().list_tags_for_resource(ResourceArn=FLYWHEEL)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags if t["Key"] in keys} == {k: k for k in keys}
    made = new_commits(server.root, before)
    assert [subject(server.root, c) for c in made] == ["TagResource sections"] * 5
    # each commit adds exactly one key to what the one before it had: none overwrote another
    seen: set[str] = set()
    for revision in made:
        now = set(spec_of(server.root, revision=revision).get("tags", {})) & set(keys)
        assert len(now - seen) == 1 and seen <= now, (revision, seen, now)
        seen = now
    assert set(spec_of(server.root)["tags"]) >= set(keys)
    assert_specs_valid(server.root)


# 2. UpdateFlywheel --------------------------------------------------------------------------


def test_five_concurrent_role_updates_are_five_commits(server: ApiServer) -> None:
    before = commits(server.root)
    roles = [f"{ROLE}writer-{i}" for i in range(5)]
    outcomes = together(server, [
        (lambda c, r=role: c.update_flywheel(FlywheelArn=FLYWHEEL, DataAccessRoleArn=r))
        for role in roles])
    assert all(code == "ok" or code in CLEAR_CONFLICTS for code, _ in outcomes), outcomes
    landed = sum(code == "ok" for code, _ in outcomes)
    assert landed == 5, outcomes  # nothing else holds the lock: none needs to give up
    made = new_commits(server.root, before)
    assert [subject(server.root, c) for c in made] == ["UpdateFlywheel sections: settings"] * 5
    written = [spec_of(server.root, revision=c)["comprehend"]["dataAccessRoleArn"] for c in made]
    assert sorted(written) == roles  # every writer's value was committed, once
    final = server.client().describe_flywheel(FlywheelArn=FLYWHEEL)["FlywheelProperties"]
    assert final["DataAccessRoleArn"] == written[-1]
    assert spec_of(server.root)["task"]["labels"] == LABELS
    assert_specs_valid(server.root)


def test_concurrent_updates_of_different_settings_keep_both(server: ApiServer) -> None:
    """Role writers and security writers at once: whichever commits last, the final spec has
    the last role AND the last key, as the same calls one after another would leave it."""
    for round_ in range(3):  # a race: three chances to show a lost update
        roles = [f"{ROLE}round-{round_}-{i}" for i in range(3)]
        keys = [f"key-{round_}-{i}" for i in range(2)]
        before = commits(server.root)
        calls: list[Callable[[Any], Any]] = []
        for i in range(3):
            calls.append(lambda c, r=roles[i]: c.update_flywheel(FlywheelArn=FLYWHEEL,
                                                                 DataAccessRoleArn=r))
            if i < 2:
                calls.append(lambda c, k=keys[i]: c.update_flywheel(
                    FlywheelArn=FLYWHEEL, DataSecurityConfig={"ModelKmsKeyId": k}))
        outcomes = together(server, calls)
        assert all(code == "ok" for code, _ in outcomes), outcomes
        made = new_commits(server.root, before)
        assert len(made) == 5
        # who wrote each commit: the one whose own value is new in it
        last_role = last_key = None
        previous = spec_of(server.root, revision=f"{made[0]}~1").get("comprehend", {})
        for revision in made:
            block = spec_of(server.root, revision=revision)["comprehend"]
            role = block.get("dataAccessRoleArn")
            key = block.get("dataSecurityConfig", {}).get("modelKmsKeyId")
            if role in roles and role != previous.get("dataAccessRoleArn"):
                last_role = role
            if key in keys and key != previous.get("dataSecurityConfig", {}).get(
                    "modelKmsKeyId"):
                last_key = key
            previous = block
        final = server.client().describe_flywheel(FlywheelArn=FLYWHEEL)["FlywheelProperties"]
        assert (final.get("DataAccessRoleArn"),
                final.get("DataSecurityConfig", {}).get("ModelKmsKeyId")) == (
            last_role, last_key), f"round {round_}: a concurrent update was lost"
        assert_specs_valid(server.root)


# 3. CreateDataset ---------------------------------------------------------------------------


def test_two_concurrent_create_datasets_of_one_name_declare_it_once(server: ApiServer) -> None:
    rows = [train_rows(3, skip=15), train_rows(4, skip=18)]
    sources = [incoming(server.root, f"race-{i}.csv", r) for i, r in enumerate(rows)]
    data_folder = server.root / "data/sections"
    incoming_folder = server.root / ".flywheel/incoming"
    files_before = sorted(p.name for p in data_folder.iterdir())
    before = commits(server.root)
    outcomes = together(server, [
        (lambda c, s=source: c.create_dataset(
            FlywheelArn=FLYWHEEL, DatasetName="raced", DatasetType="TRAIN",
            InputDataConfig={"DocumentClassifierInputDataConfig": {"S3Uri": s}}))
        for source in sources])
    codes = sorted(code for code, _ in outcomes)
    assert codes == ["ResourceInUseException", "ok"], outcomes
    won = [code for code, _ in outcomes].index("ok")
    winner = sources[won]
    loser_message = next(message for code, message in outcomes if code != "ok")
    assert "raced" in loser_message and loser_message.startswith("400: ")
    declared = [d for d in spec_of(server.root)["datasets"] if d["name"] == "raced"]
    assert declared == [{"name": "raced", "type": "TRAIN", "path": "data/sections/raced.csv"}]
    assert commits(server.root)[:-len(before)] == [
        f"CreateDataset sections/raced (TRAIN, {len(rows[won])} documents)"]
    assert (data_folder / "raced.csv").read_bytes() == (server.root / winner).read_bytes()
    assert sorted(p.name for p in data_folder.iterdir()) == sorted([*files_before, "raced.csv"])
    assert [p.name for p in incoming_folder.iterdir()] == []  # no temp copy left behind
    assert git(server.root, "status", "--porcelain", "--", "data/sections", "specs") == ""
    assert_specs_valid(server.root)


# 4. CreateFlywheel --------------------------------------------------------------------------


def test_two_concurrent_create_flywheels_of_one_name_make_one(server: ApiServer) -> None:
    before = commits(server.root)
    label_sets = [["alpha", "beta"], ["gamma", "delta", "epsilon"]]

    def create(labels: list[str]) -> Callable[[Any], Any]:
        return lambda c: c.create_flywheel(
            FlywheelName="raced-flywheel", DataAccessRoleArn=f"{ROLE}creator",
            DataLakeS3Uri="s3://flywheel-lake/raced", ModelType="DOCUMENT_CLASSIFIER",
            TaskConfig={"LanguageCode": "en", "DocumentClassificationConfig": {
                "Mode": "MULTI_CLASS", "Labels": labels}})

    outcomes = together(server, [create(labels) for labels in label_sets])
    codes = [code for code, _ in outcomes]
    assert sorted(codes) == ["ResourceInUseException", "ok"], outcomes
    assert "exists already" in outcomes[codes.index("ResourceInUseException")][1]
    assert commits(server.root)[:-len(before)] == ["CreateFlywheel raced-flywheel"]
    spec = spec_of(server.root, "raced-flywheel")
    assert spec["task"]["labels"] == label_sets[codes.index("ok")]  # the winner's, whole
    assert_specs_valid(server.root)


# 5. reads during writes ---------------------------------------------------------------------


def test_reads_during_writes_never_fail(server: ApiServer) -> None:
    def read(index: int) -> Callable[[Any], Any]:
        def call(c: Any) -> Any:
            for _ in range(3):
                if index % 2:
                    listed = c.list_flywheels()["FlywheelSummaryList"]
                    assert any(s["FlywheelArn"] == FLYWHEEL for s in listed)
                else:
                    props = c.describe_flywheel(FlywheelArn=FLYWHEEL)["FlywheelProperties"]
                    assert props["Status"] == "ACTIVE", props
            return "read"
        return call

    def write(index: int) -> Callable[[Any], Any]:
        def call(c: Any) -> Any:
            for round_ in range(3):
                key = f"busy-{index}-{round_}"
                c.tag_resource(ResourceArn=FLYWHEEL, Tags=[{"Key": key, "Value": "x"}])
                c.untag_resource(ResourceArn=FLYWHEEL, TagKeys=[key])
            return "wrote"
        return call

    before = commits(server.root)
    outcomes = together(server, [read(i) for i in range(20)] + [write(i) for i in range(3)])
    assert outcomes == [("ok", "read")] * 20 + [("ok", "wrote")] * 3, [
        o for o in outcomes if o[0] != "ok"]
    assert len(commits(server.root)) == len(before) + 18
    assert_specs_valid(server.root)


# with the watch daemon committing too -------------------------------------------------------


PROMOTED = """\
# A flywheel whose policy writes its active model back to this file.
apiVersion: flywheel-reconciler/v1
name: promoted
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]
datasets:
  - name: train
    type: TRAIN
    path: data/promoted/train.csv
  - name: test
    type: TEST
    path: data/promoted/test.csv
recipe:
  algorithm: complement-nb
promotion:
  minF1: 0
  writeBack: true
"""


def test_api_writes_while_the_daemon_writes_back(tmp_path: Path) -> None:
    root = reconciled_repo(tmp_path / "repo")
    write_csv(root / "data/promoted/train.csv", train_rows(12, skip=15))
    write_csv(root / "data/promoted/test.csv", holdout_rows(6))
    (root / "specs/promoted.yaml").write_text(PROMOTED, "utf-8")
    commit(root, "the promoted flywheel")
    arn = f"{ARN}flywheel/promoted"
    stop = threading.Event()
    landed: dict[str, list[str]] = {}  # each writer's key: the values it set, in order
    refused: list[tuple[str, str]] = []

    def tagger(comprehend: Any, index: int) -> None:
        """Set this writer's own key to 0, 1, 2, ... (a key per writer keeps the tags under
        Comprehend's 50): a lost update shows as a key holding an older value."""
        key, values = f"writer-{index}", landed.setdefault(f"writer-{index}", [])
        count = 0
        while not stop.is_set() and count < 500:
            value = str(count)
            count += 1
            try:
                comprehend.tag_resource(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])
                values.append(value)
            except ClientError as exc:
                refused.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
            stop.wait(0.02)

    def written_back() -> str | None:
        return next((s for s in commits(root) if s.startswith("flywheel: promoted activeModel")),
                    None)

    with ApiServer(root, watch=True) as server:
        clients = [server.client() for _ in range(3)]
        threads = [threading.Thread(target=tagger, args=(c, i)) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        try:
            wait_for(written_back, timeout=120, interval=0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        wait_for(lambda: git(root, "status", "--porcelain", "--", "specs") == "", timeout=30)
        tags = server.client().list_tags_for_resource(ResourceArn=arn)["Tags"]
    # A writer may meet the daemon's edit before its commit: a clear conflict, never a 500.
    assert all(code in CLEAR_CONFLICTS for code, _ in refused), refused
    last = {key: values[-1] for key, values in landed.items() if values}
    assert len(last) == 3, "a writer wrote no tag while the daemon worked"
    assert {t["Key"]: t["Value"] for t in tags} == last  # none lost, none reverted
    log = commits(root)
    assert log.count("TagResource promoted") == sum(len(v) for v in landed.values())
    assert written_back() is not None
    spec = spec_of(root, "promoted")
    assert spec["activeModel"] == "v1"  # the write-back is not undone by a tag commit
    assert spec["tags"] == last
    assert_specs_valid(root)
