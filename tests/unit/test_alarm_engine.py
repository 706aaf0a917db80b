"""The degradation alarm in the engine: events and webhook posts after the iterations that
change it (over the in-memory lake and the recording executor, no DVC, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.core.spec import Webhook
from reconciler.runtime.alerts import Announcer
from reconciler.runtime.events import Degraded, Recovered
from reconciler.runtime.reconcile import reconcile
from reconciler.runtime.writeback import GitOps
from reconciler.testing import InMemoryLake, RecordingExecutor

NAME = "packages"
START = 1_800_000_000.0


class Recording(Announcer):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def announce(self, hook: Webhook, body: dict[str, Any]) -> None:
        self.sent.append((hook.url, body))


def write(root: Path, train: list[str], *, webhook: bool = True) -> None:
    for name in [*train, "test"]:
        path = root / "data" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{label},{name} text {i} about {label}\n"
                                for label in ("games", "mail") for i in range(10)), "utf-8")
    rows = "".join(f"  - {{name: {t}, type: TRAIN, path: data/{t}.csv}}\n" for t in train)
    hook = "    webhook: {url: 'http://127.0.0.1:9/hook', retries: 0}\n" if webhook else ""
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / f"{NAME}.yaml").write_text(
        f"apiVersion: flywheel-reconciler/v1\nname: {NAME}\ntask:\n  mode: MULTI_CLASS\n"
        f"  labels: [games, mail]\ndatasets:\n{rows}"
        "  - {name: test, type: TEST, path: data/test.csv}\n"
        "promotion:\n  minF1: 0.5\n  minImprovement: 0.01\n  degradation:\n    maxDrop: 0.03\n"
        + hook, "utf-8")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, InMemoryLake, RecordingExecutor, Recording]:
    root = (tmp_path / "repo").resolve()
    lake = InMemoryLake(root)
    return root, lake, RecordingExecutor(tmp_path / "out", lake=lake), Recording()


def run(root: Path, lake: InMemoryLake, executor: RecordingExecutor, announcer: Recording,
        events: list[object], now: float) -> None:
    result = reconcile(root, lake=lake, executor=executor, clock=lambda: now,
                       report=events.append, gitops=GitOps(commit=False), announcer=announcer)
    assert result.ok, [str(e) for e in result.all_errors]


def test_an_iteration_that_shows_the_drop_announces_it_once_and_a_promotion_clears_it(
        setup: tuple[Path, InMemoryLake, RecordingExecutor, Recording]) -> None:
    root, lake, executor, announcer = setup
    events: list[object] = []
    executor.f1s = [0.90, 0.80, 0.95]
    executor.active_f1 = 0.85  # v1 scores 0.85 on later test data: 0.05 below its 0.90
    write(root, ["t1"])
    run(root, lake, executor, announcer, events, START)  # v1 trained at 0.90 and promoted
    assert not [e for e in events if isinstance(e, Degraded)] and not announcer.sent

    write(root, ["t1", "t2"])
    run(root, lake, executor, announcer, events, START + 100)  # v2 0.80: not promoted
    (degraded,) = [e for e in events if isinstance(e, Degraded)]
    assert degraded.degradation.version == "v1"
    assert degraded.degradation.f1_at_promotion == pytest.approx(0.90)
    assert degraded.degradation.f1_now < 0.90 - 0.03  # the canned active score, ~0.85
    (url, body), = announcer.sent
    assert url == "http://127.0.0.1:9/hook" and body["event"] == "flywheel.degraded"
    assert body["condition"]["reason"] == "F1Dropped"
    assert body["degradation"]["iteration"] == degraded.degradation.iteration

    run(root, lake, executor, announcer, events, START + 200)  # nothing new: no second alarm
    assert len(announcer.sent) == 1

    write(root, ["t1", "t2", "t3"])
    run(root, lake, executor, announcer, events, START + 300)  # v3 0.95 promoted: cleared
    (recovered,) = [e for e in events if isinstance(e, Recovered)]
    assert recovered.version == "v3" and "v3 is active now" in recovered.how
    assert [b["event"] for _, b in announcer.sent] == ["flywheel.degraded",
                                                       "flywheel.recovered"]


def test_without_a_webhook_the_events_still_tell(
        setup: tuple[Path, InMemoryLake, RecordingExecutor, Recording]) -> None:
    root, lake, executor, announcer = setup
    events: list[object] = []
    executor.f1s, executor.active_f1 = [0.90, 0.80], 0.85
    write(root, ["t1"], webhook=False)
    run(root, lake, executor, announcer, events, START)
    write(root, ["t1", "t2"], webhook=False)
    run(root, lake, executor, announcer, events, START + 100)
    assert [type(e) for e in events if isinstance(e, Degraded | Recovered)] == [Degraded]
    assert not announcer.sent
