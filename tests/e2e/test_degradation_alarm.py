"""The degradation alarm end to end: real git, DVC and scikit-learn; a test set the active
version does worse on makes the flywheel Degraded (list, describe, JSON, the webhook on a real
loopback receiver), and making another version active clears it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_harness import test_rows as held_out_rows
from api_harness import train_rows
from conftest import commit, run_cli, write_csv
from webhook_server import Receiver

LABELS = ["database", "games", "mail", "sound"]
SPEC = """\
apiVersion: flywheel-reconciler/v1
name: sections
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]
datasets:
  - {{name: train-1, type: TRAIN, path: data/sections/train-1.csv}}
  - {{name: test, type: TEST, path: data/sections/test.csv}}
{extra}recipe:
  algorithm: complement-nb
promotion:
  minF1: 0.0
  minImprovement: 0.5     # later versions are not promoted: v1 stays active and is watched
  degradation:
    maxDrop: 0.03
    webhook: {{url: '{url}', timeoutSeconds: 5, retries: 2}}
"""
SHIFTED = "  - {name: test-shifted, type: TEST, path: data/sections/test-shifted.csv}\n"


def write_spec(root: Path, url: str, *, shifted: bool) -> None:
    (root / "specs/sections.yaml").write_text(
        SPEC.format(extra=SHIFTED if shifted else "", url=url), "utf-8")


def shifted_rows() -> list[tuple[str, str]]:
    """Real documents filed under another label: a test set the active version gets wrong
    (what a change in how people label looks like to it)."""
    rotate = dict(zip(LABELS, LABELS[1:] + LABELS[:1], strict=True))
    return [(rotate[label], text) for label, text in held_out_rows(10)]


@pytest.fixture(scope="module")
def hook() -> Receiver:
    with Receiver() as receiver:
        yield receiver


def test_a_drop_is_degraded_everywhere_and_recovers(tmp_path: Path, hook: Receiver) -> None:
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    write_csv(root / "data/sections/train-1.csv", train_rows(15))
    write_csv(root / "data/sections/test.csv", held_out_rows(8))
    write_spec(root, hook.url, shifted=False)
    commit(root, "the sections flywheel")
    run_cli(root, "reconcile")  # v1 trained and promoted (first model)
    assert not hook.bodies
    healthy = run_cli(root, "describe", "sections", "-o", "json").json()
    kinds = [c["Type"] for c in healthy["FlywheelProperties"]["Conditions"]]
    assert kinds == ["Ready"] and "Degradation" not in healthy["FlywheelProperties"]

    write_csv(root / "data/sections/test-shifted.csv", shifted_rows())
    write_spec(root, hook.url, shifted=True)
    commit(root, "a test set labelled another way")
    report = tmp_path / "report.md"
    run = run_cli(root, "reconcile", "--log-format", "json", "--report", str(report))
    lines = [json.loads(line) for line in run.stderr.splitlines() + run.stdout.splitlines()
             if line.startswith("{")]
    degraded_lines = [f for f in lines if f.get("event") == "degraded"]
    assert degraded_lines and degraded_lines[0]["version"] == "v1"

    markdown = report.read_text("utf-8")
    assert "**Degraded**: active v1: F1" in markdown and "labels that fell most" in markdown

    # the webhook was posted before the one-shot process ended
    (body,) = hook.bodies
    assert body["event"] == "flywheel.degraded" and body["flywheel"] == "sections"
    figures = body["degradation"]
    assert figures["version"] == "v1" and figures["rule"] == "maxDrop"
    assert figures["f1AtPromotion"] - figures["f1Now"] > 0.03
    assert body["labels"], "the labels that fell are named"

    described = run_cli(root, "describe", "sections", "-o", "json").json()
    props = described["FlywheelProperties"]
    assert props["Status"] == "ACTIVE"  # Comprehend's status stays true: it is active
    degraded = [c for c in props["Conditions"] if c["Type"] == "Degraded"]
    assert degraded and degraded[0]["Status"] is True and degraded[0]["Reason"] == "F1Dropped"
    assert "Degraded:" in props["Message"]
    assert props["Degradation"]["Iteration"] == figures["iteration"]
    assert props["Degradation"]["Labels"][0]["Drop"] > 0
    listed = run_cli(root, "list").stdout
    assert "Degraded" in listed
    text = run_cli(root, "describe", "sections").stdout
    assert "Degraded" in text and "labels that fell most" in text
    listed_json = run_cli(root, "list", "-o", "json").json()
    (summary,) = listed_json["FlywheelSummaryList"]
    assert "Degraded" in [c["Type"] for c in summary["Conditions"]]

    # another version made active (a person's pin): the alarm clears, and says so
    (root / "specs/sections.yaml").write_text(
        (root / "specs/sections.yaml").read_text("utf-8") + "activeModel: v2\n", "utf-8")
    commit(root, "pin v2")
    run_cli(root, "reconcile")
    assert [b["event"] for b in hook.bodies] == ["flywheel.degraded", "flywheel.recovered"]
    assert hook.bodies[1]["activeModel"] == "v2"
    after = run_cli(root, "describe", "sections", "-o", "json").json()["FlywheelProperties"]
    assert [c["Type"] for c in after["Conditions"]] == ["Ready"]
