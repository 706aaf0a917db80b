"""Latency of ``flywheel serve`` under concurrent boto3 clients, against moto's server mode.

Ours: ``flywheel serve --no-watch`` (uvicorn, a subprocess on a free loopback port) over a real
git + DVC repository built in a temporary folder: one flywheel ``sections`` (4 labels of the
bundled ``data/debian-sections`` data, 15 TRAIN + 8 TEST documents per label) reconciled once
(v1 trained), then pinned with ``activeModel: v1`` in its spec and reconciled again, and an
endpoint created over the API with ``CreateEndpoint(FlywheelArn=...)`` (so it serves v1).

Baseline: moto's server mode (``moto_server -p PORT``, also a subprocess) holding one flywheel
made with boto3 ``create_flywheel``. Moto 5.2.5 implements create/describe/list/delete flywheel
and StartFlywheelIteration only, so the baseline of our ListFlywheelIterationHistory is moto's
ListFlywheels (the nearest list it has; our own ListFlywheels is measured too, for the
like-for-like figure). ClassifyDocument has no moto baseline; its target is absolute.

Timed: DescribeFlywheel, ListFlywheelIterationHistory (vs moto ListFlywheels), ListFlywheels
and ClassifyDocument (a 1 KB text, the model loaded by warm-up calls first) at 1, 8 and 32
concurrent clients. Each client is a real boto3 client (``retries={"max_attempts": 1}``,
``max_pool_connections=64``) in its own thread (``ThreadPoolExecutor``); every client makes
``--warmup`` untimed calls, all wait at a barrier, then each makes ``--calls`` calls, each timed
with ``time.perf_counter()`` around the boto3 call. Ours and moto alternate per operation and
concurrency level, so load drift hits both. Reported: p50, p95, p99 (ms) and ours/moto ratios.

The figures include the client's own cost: botocore builds, signs and parses every call in
Python (~1-2 ms), and with 32 threads the benchmark process's GIL caps throughput and adds
queueing. Both apply equally to moto, which is why the ratio is the figure to read. A raw
``http.client`` DescribeFlywheel (one keep-alive connection, one prepared unsigned request, no
parsing) at 1 client shows the server + loopback cost without botocore.

Targets (PASS/FAIL): DescribeFlywheel and the list p99 <= moto's at every concurrency;
ClassifyDocument p95 <= 20 ms for 1 KB with the model in memory (one client: no queueing);
no error (exception or 5xx) in a bounded loopback load of ``--requests`` calls (default 20,000)
from 32 clients, a round-robin mix of DescribeFlywheel, ListFlywheelIterationHistory,
ListFlywheels, DescribeEndpoint and ClassifyDocument.

    .venv/bin/python benchmarks/api_latency.py [--quick] [--clients 1,8,32] [--calls 50]
        [--warmup 5] [--requests 20000] [--json FILE] [--chart FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from _common import (
    BIN,
    FLYWHEEL,
    PROJECT,
    check_environment,
    environment,
    init_repository,
    machine_note,
    run_timed,
)
from botocore.config import Config

LABELS = ("database", "games", "mail", "sound")
ARN = "arn:aws:comprehend:local:000000000000:"
FLYWHEEL_ARN = f"{ARN}flywheel/sections"
MOTO_ROLE = "arn:aws:iam::123456789012:role/comprehend"
CLASSIFY_P95_TARGET_MS = 20.0
TEXT_BYTES = 1024
READY_TIMEOUT = 60.0
SPEC = """\
apiVersion: flywheel-reconciler/v1
name: sections
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]
datasets:
  - name: train-1
    type: TRAIN
    path: data/sections/train-1.csv
  - name: test
    type: TEST
    path: data/sections/test.csv
recipe:
  algorithm: complement-nb
"""


# the repository and the servers ----------------------------------------------------------------


def bundled_rows(file: str, per_label: int) -> list[tuple[str, str]]:
    taken: Counter[str] = Counter()
    rows = []
    with (PROJECT / "data/debian-sections" / file).open(encoding="utf-8", newline="") as handle:
        for label, text in csv.reader(handle):
            if label in LABELS and taken[label] < per_label:
                taken[label] += 1
                rows.append((label, text))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def git_commit(repo: Path, message: str) -> None:
    """Commit everything in the scratch repository, as a person would."""
    for args in (["add", "-A"], ["-c", "user.name=Bench", "-c", "user.email=bench@example.org",
                                 "commit", "-q", "-m", message]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def build_repository(root: Path) -> None:
    """One flywheel, v1 trained and pinned active (so an endpoint on it serves v1)."""
    root.mkdir()
    init_repository(root)
    write_csv(root / "data/sections/train-1.csv", bundled_rows("train-v1.csv", 15))
    write_csv(root / "data/sections/test.csv", bundled_rows("test.csv", 8))
    (root / "specs/sections.yaml").write_text(SPEC, "utf-8")
    git_commit(root, "the sections flywheel")
    run_timed([FLYWHEEL, "reconcile"], cwd=root)
    git_commit(root, "the first iteration's records")
    (root / "specs/sections.yaml").write_text(SPEC + "activeModel: v1\n", "utf-8")
    git_commit(root, "pin v1")
    run_timed([FLYWHEEL, "reconcile"], cwd=root)
    git_commit(root, "the pin observed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A server subprocess on a free loopback port; ``stop()`` terminates, then kills."""

    def __init__(self, name: str, args: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen([part.replace("{port}", str(self.port)) for part in args],
                                        cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environment())
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{name} exited {self.process.returncode}:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not listen in time:\n{self.tail()}") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return self.log.read_text("utf-8", "replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def client(url: str) -> Any:
    """A real boto3 Comprehend client; each thread gets its own session and client."""
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE",
                                    aws_secret_access_key="secret", region_name="us-east-1")
    return session.client("comprehend", endpoint_url=url,
                          config=Config(retries={"max_attempts": 1}, max_pool_connections=64))


def one_kb_text() -> str:
    """About 1 KB (exactly TEXT_BYTES of UTF-8 or a few bytes less) of bundled test text."""
    texts = [text for _, text in bundled_rows("test.csv", 50)][40:]
    data = " ".join(texts).encode("utf-8")[:TEXT_BYTES]
    return data.decode("utf-8", "ignore")


# measuring ---------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Result:
    server: str
    operation: str
    clients: int
    samples: list[float]  # seconds
    errors: Counter[str]
    wall: float

    def ms(self, q: float) -> float:
        return percentile(self.samples, q) * 1000 if self.samples else math.nan

    def figures(self) -> dict[str, Any]:
        return {"server": self.server, "operation": self.operation, "clients": self.clients,
                "calls": len(self.samples), "errors": dict(self.errors),
                "p50_ms": self.ms(50), "p95_ms": self.ms(95), "p99_ms": self.ms(99),
                "throughput_per_s": len(self.samples) / self.wall if self.wall else None}


Call = Callable[[Any], Any]


def error_name(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata", {})
        code = response.get("Error", {}).get("Code", "?")
        return f"{type(exc).__name__}:{code}:HTTP{meta.get('HTTPStatusCode', '?')}"
    return type(exc).__name__


def run_clients(clients: list[Any], calls: list[Call], per_client: int, warmup: int
                ) -> tuple[list[float], Counter[str], float]:
    """Every client in its own thread: ``warmup`` untimed calls, a barrier, then ``per_client``
    timed calls; client ``i``'s call ``j`` is ``calls[(i + j) % len(calls)]``."""
    barrier = threading.Barrier(len(clients) + 1)

    def work(index: int) -> tuple[list[float], Counter[str]]:
        own = clients[index]
        errors: Counter[str] = Counter()
        for j in range(warmup):
            with contextlib.suppress(Exception):
                calls[(index + j) % len(calls)](own)
        barrier.wait()
        samples = []
        for j in range(per_client):
            call = calls[(index + j) % len(calls)]
            started = time.perf_counter()
            try:
                call(own)
            except Exception as exc:  # counted, not raised: the load test reports them all
                errors[error_name(exc)] += 1
                continue
            samples.append(time.perf_counter() - started)
        return samples, errors

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(work, index) for index in range(len(clients))]
        barrier.wait()
        started = time.perf_counter()
        done = [future.result() for future in futures]
        wall = time.perf_counter() - started
    samples = [s for own, _ in done for s in own]
    errors: Counter[str] = sum((e for _, e in done), Counter())
    return samples, errors, wall


def raw_describe(port: int, body: bytes, target: str, calls: int) -> list[float]:
    """DescribeFlywheel over one keep-alive ``http.client`` connection, unsigned, unparsed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
               "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/"
                                "comprehend/aws4_request, SignedHeaders=host, Signature=0"}
    samples = []
    try:
        for index in range(calls + 5):
            started = time.perf_counter()
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"raw DescribeFlywheel: HTTP {response.status}")
            if index >= 5:
                samples.append(elapsed)
    finally:
        connection.close()
    return samples


# the benchmark -----------------------------------------------------------------------------------


def setup_moto(url: str) -> str:
    moto = client(url)
    answer = moto.create_flywheel(
        FlywheelName="sections", DataAccessRoleArn=MOTO_ROLE,
        TaskConfig={"LanguageCode": "en",
                    "DocumentClassificationConfig": {"Mode": "MULTI_CLASS",
                                                     "Labels": list(LABELS)}},
        DataLakeS3Uri="s3://bench-lake/sections")
    return str(answer["FlywheelArn"])


def setup_ours(url: str) -> str:
    ours = client(url)
    version = f"{ARN}document-classifier/sections/version/v1"
    active = ours.describe_flywheel(FlywheelArn=FLYWHEEL_ARN)["FlywheelProperties"]
    if active.get("ActiveModelArn") != version:
        raise RuntimeError(f"the pin is not observed: {active}")
    endpoint = ours.create_endpoint(EndpointName="sections-ep", FlywheelArn=FLYWHEEL_ARN,
                                    DesiredInferenceUnits=1)
    arn = str(endpoint["EndpointArn"])
    props = ours.describe_endpoint(EndpointArn=arn)["EndpointProperties"]
    if props["Status"] != "IN_SERVICE" or props.get("ModelArn") != version:
        raise RuntimeError(f"the endpoint does not serve v1: {props}")
    return arn


def operations(moto_arn: str, endpoint_arn: str, text: str) -> dict[str, dict[str, Call]]:
    """Per measured operation: the call on ours and (when it has one) on moto."""

    def describe(arn: str) -> Call:
        return lambda c: c.describe_flywheel(FlywheelArn=arn)

    return {
        "DescribeFlywheel": {"ours": describe(FLYWHEEL_ARN), "moto": describe(moto_arn)},
        "ListFlywheelIterationHistory": {
            "ours": lambda c: c.list_flywheel_iteration_history(FlywheelArn=FLYWHEEL_ARN),
            "moto": lambda c: c.list_flywheels()},  # moto has no iteration history
        "ListFlywheels": {"ours": lambda c: c.list_flywheels(),
                          "moto": lambda c: c.list_flywheels()},
        "ClassifyDocument": {
            "ours": lambda c: c.classify_document(EndpointArn=endpoint_arn, Text=text)},
    }


def measure(urls: dict[str, str], ops: dict[str, dict[str, Call]], levels: list[int],
            per_client: int, warmup: int) -> list[Result]:
    results = []
    for clients_count in levels:
        pools = {server: [client(url) for _ in range(clients_count)]
                 for server, url in urls.items()}
        for operation, by_server in ops.items():
            for server, call in by_server.items():
                samples, errors, wall = run_clients(pools[server], [call], per_client, warmup)
                results.append(Result(server, operation, clients_count, samples, errors, wall))
                print(f"  {operation:<29} {server:<4} {clients_count:>3} clients: "
                      f"p50 {results[-1].ms(50):7.2f} ms  p99 {results[-1].ms(99):7.2f} ms"
                      + (f"  errors {dict(errors)}" if errors else ""), flush=True)
    return results


def load_test(url: str, moto_arn: str, endpoint_arn: str, text: str, requests: int,
              clients_count: int = 32) -> Result:
    calls: list[Call] = [
        lambda c: c.describe_flywheel(FlywheelArn=FLYWHEEL_ARN),
        lambda c: c.list_flywheel_iteration_history(FlywheelArn=FLYWHEEL_ARN),
        lambda c: c.list_flywheels(),
        lambda c: c.describe_endpoint(EndpointArn=endpoint_arn),
        lambda c: c.classify_document(EndpointArn=endpoint_arn, Text=text),
    ]
    per_client = math.ceil(requests / clients_count)
    pool = [client(url) for _ in range(clients_count)]
    samples, errors, wall = run_clients(pool, calls, per_client, 0)
    return Result("ours", "load mix", clients_count, samples, errors, wall)


# reporting ---------------------------------------------------------------------------------------


def find(results: list[Result], server: str, operation: str, clients_count: int
         ) -> Result | None:
    for result in results:
        if (result.server, result.operation, result.clients) == (server, operation,
                                                                 clients_count):
            return result
    return None


def table(results: list[Result], levels: list[int]) -> list[str]:
    lines = [f"{'operation':<29} {'clients':>7} | {'ours p50':>8} {'p95':>7} {'p99':>7} | "
             f"{'moto p50':>8} {'p95':>7} {'p99':>7} | {'p50 x':>6} {'p99 x':>6}"]
    lines.append("-" * len(lines[0]))
    operations_seen = list(dict.fromkeys(r.operation for r in results if r.server == "ours"))
    for operation in operations_seen:
        for level in levels:
            ours = find(results, "ours", operation, level)
            moto = find(results, "moto", operation, level)
            if ours is None:
                continue
            line = (f"{operation:<29} {level:>7} | {ours.ms(50):8.2f} {ours.ms(95):7.2f} "
                    f"{ours.ms(99):7.2f} | ")
            if moto is not None:
                line += (f"{moto.ms(50):8.2f} {moto.ms(95):7.2f} {moto.ms(99):7.2f} | "
                         f"{ours.ms(50) / moto.ms(50):6.2f} {ours.ms(99) / moto.ms(99):6.2f}")
            else:
                line += f"{'(no moto baseline)':>24} |"
            lines.append(line)
    return lines


def write_chart(results: list[Result], levels: list[int], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["DescribeFlywheel", "ListFlywheelIterationHistory", "ListFlywheels",
              "ClassifyDocument"]
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 4.6), sharey=True)
    width = 0.38
    for ax, operation in zip(axes, panels, strict=True):
        xs = list(range(len(levels)))
        for offset, server, colour in ((-width / 2, "ours", "C0"), (width / 2, "moto", "C1")):
            found = [find(results, server, operation, level) for level in levels]
            if not any(found):
                continue
            values = [r.ms(99) if r else math.nan for r in found]
            label = "moto ListFlywheels" if (server == "moto" and operation
                                             == "ListFlywheelIterationHistory") else server
            bars = ax.bar([x + offset for x in xs], values, width, color=colour, label=label)
            ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
        if operation == "ClassifyDocument":
            ax.axhline(CLASSIFY_P95_TARGET_MS, color="C3", linestyle="--", linewidth=1,
                       label="20 ms (p95 target, 1 client)")
        ax.set_xticks(xs, [str(level) for level in levels])
        ax.set_xlabel("concurrent clients")
        ax.set_title(operation, fontsize=10)
        ax.set_yscale("log")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8,
                  frameon=False)
    axes[0].set_ylabel("p99 latency, ms (log scale)")
    figure.suptitle("flywheel serve vs moto server mode: p99 latency per call (boto3 clients)")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,8,32",
                        help="comma-separated concurrency levels (default 1,8,32)")
    parser.add_argument("--calls", type=int, default=None,
                        help="timed calls per client and operation (default 60; 15 with --quick)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per client first")
    parser.add_argument("--requests", type=int, default=None,
                        help="calls in the error-free load test (default 20000; 2000 --quick)")
    parser.add_argument("--quick", action="store_true", help="a short run (fewer calls)")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--chart", type=Path, help="write a PNG chart of p99 vs concurrency")
    args = parser.parse_args()
    levels = [int(part) for part in args.clients.split(",") if part.strip()]
    per_client = args.calls if args.calls is not None else (15 if args.quick else 60)
    requests = args.requests if args.requests is not None else (2000 if args.quick else 20000)
    check_environment()
    moto_server = BIN / "moto_server"
    if not moto_server.exists():
        sys.exit(f"not found: {moto_server} (pip install 'moto[server]')")
    print(machine_note())
    print(f"levels {levels}, {per_client} timed calls per client after {args.warmup} warm-up "
          f"calls; load test {requests} requests from 32 clients")
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        try:
            repo = Path(scratch) / "repo"
            started = time.perf_counter()
            build_repository(repo)
            print(f"repository built and reconciled in {time.perf_counter() - started:.1f} s")
            ours = Server("flywheel serve", [FLYWHEEL, "-C", str(repo), "serve", "--port",
                                             "{port}", "--no-watch"],
                          Path(scratch) / "serve.log", Path(scratch))
            servers.append(ours)
            moto = Server("moto_server", [str(moto_server), "-H", "127.0.0.1", "-p", "{port}"],
                          Path(scratch) / "moto.log", Path(scratch))
            servers.append(moto)
            endpoint_arn = setup_ours(ours.url)
            moto_arn = setup_moto(moto.url)
            text = one_kb_text()
            warm = client(ours.url)
            started = time.perf_counter()
            warm.classify_document(EndpointArn=endpoint_arn, Text=text)
            first = time.perf_counter() - started
            for _ in range(20):
                warm.classify_document(EndpointArn=endpoint_arn, Text=text)
            print(f"first ClassifyDocument (loads the model): {first * 1000:.1f} ms; text "
                  f"{len(text.encode('utf-8'))} bytes")
            ops = operations(moto_arn, endpoint_arn, text)
            print("measuring (ours and moto alternate):")
            results = measure({"ours": ours.url, "moto": moto.url}, ops, levels, per_client,
                              args.warmup)
            raw = {}
            for name, server, arn in (("ours", ours, FLYWHEEL_ARN), ("moto", moto, moto_arn)):
                raw[name] = raw_describe(server.port, json.dumps({"FlywheelArn": arn}).encode(),
                                         "Comprehend_20171127.DescribeFlywheel",
                                         max(per_client, 50))
            print(f"load test: {requests} requests, 32 clients ...", flush=True)
            load = load_test(ours.url, moto_arn, endpoint_arn, text, requests)
        finally:
            for server in reversed(servers):
                server.stop()
        server_log_errors = [line for line in ours.log.read_text("utf-8", "replace").splitlines()
                             if "Traceback" in line or '"level": "error"' in line.lower()]
    report(results, levels, raw, load, server_log_errors, args, per_client, requests)


def report(results: list[Result], levels: list[int], raw: dict[str, list[float]], load: Result,
           log_errors: list[str], args: argparse.Namespace, per_client: int,
           requests: int) -> None:
    print()
    print("latency per call, ms (boto3 client, wall time around the call); ratio = ours / moto")
    print("note: moto has no ListFlywheelIterationHistory; its baseline is moto's ListFlywheels")
    for line in table(results, levels):
        print(line)
    raw_ms = {name: (percentile(s, 50) * 1000, percentile(s, 99) * 1000)
              for name, s in raw.items()}
    print()
    print("raw http.client DescribeFlywheel, 1 client, no botocore (server + loopback only):")
    for name, (p50, p99) in raw_ms.items():
        print(f"  {name:<4} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    boto = {name: find(results, name, "DescribeFlywheel", 1) for name in raw}
    if all(boto.values()) and 1 in levels:
        client_cost = {name: boto[name].ms(50) - raw_ms[name][0]  # type: ignore[union-attr]
                       for name in raw}
        print("  botocore's own share at p50 (boto3 p50 - raw p50): "
              + ", ".join(f"{name} {cost:.2f} ms" for name, cost in client_cost.items()))
    errors_total = sum(r for result in results for r in result.errors.values())
    print()
    print(f"load test: {len(load.samples) + sum(load.errors.values())} requests from "
          f"{load.clients} clients in {load.wall:.1f} s ({len(load.samples) / load.wall:.0f}/s); "
          f"p50 {load.ms(50):.2f} ms p99 {load.ms(99):.2f} ms; errors "
          f"{dict(load.errors) or 0}; server log error lines {len(log_errors)}")
    print()
    verdicts = []
    for operation in ("DescribeFlywheel", "ListFlywheelIterationHistory"):
        for level in levels:
            ours, moto = (find(results, s, operation, level) for s in ("ours", "moto"))
            if ours is None or moto is None:
                continue
            ok = ours.ms(99) <= moto.ms(99)
            baseline = "moto ListFlywheels" if operation.startswith("List") else "moto"
            verdicts.append((ok, f"{operation} p99 <= {baseline} p99 at {level} clients: "
                                 f"{ours.ms(99):.2f} vs {moto.ms(99):.2f} ms "
                                 f"({ours.ms(99) / moto.ms(99):.2f}x)"))
    classify = find(results, "ours", "ClassifyDocument", min(levels))
    if classify is not None:
        verdicts.append((classify.ms(95) <= CLASSIFY_P95_TARGET_MS,
                         f"ClassifyDocument p95 <= {CLASSIFY_P95_TARGET_MS:g} ms, 1 KB text, "
                         f"model in memory, {classify.clients} client: {classify.ms(95):.2f} ms"))
    load_errors = sum(load.errors.values()) + len(log_errors)
    verdicts.append((load_errors == 0, f"no error under a {requests}-request loopback load "
                                       f"(32 clients, mixed): {load_errors} errors"))
    if errors_total:
        verdicts.append((False, f"errors during the latency runs: {errors_total}"))
    for ok, line in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    if args.json:
        figures = {"machine": machine_note(), "levels": levels, "calls_per_client": per_client,
                   "warmup": args.warmup, "results": [r.figures() for r in results],
                   "raw_http_describe": {n: {"p50_ms": p50, "p99_ms": p99}
                                         for n, (p50, p99) in raw_ms.items()},
                   "load": load.figures(), "server_log_errors": log_errors[:20],
                   "verdicts": [{"pass": ok, "target": line} for ok, line in verdicts]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
        print(f"figures written to {args.json}")
    if args.chart:
        write_chart(results, levels, args.chart)
        print(f"chart written to {args.chart}")


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    main()
