"""The web console at scale: page render time and size of ``flywheel serve`` for 1,000 flywheels.

The repository holds ``--flywheels`` (1,000) flywheels with 10 dataset versions each (9 TRAIN +
1 TEST), really reconciled, built by :func:`noop_reconcile.build_repository` (the reconciler's
own ``reconcile()`` in-process, then ``dvc commit`` / ``dvc add`` / ``git commit``; several
minutes at 1,000). ``--repo DIR`` reuses a repository built that way (it must hold exactly
``--flywheels`` specs); ``--keep DIR`` builds one there and leaves it.

``flywheel -C ROOT serve --no-watch --log-format json`` runs as a real subprocess on a free
loopback port. Each console page is fetched over one keep-alive ``http.client`` connection with
a cookie jar (the first GET sets the ``flywheel_session`` cookie; every later request sends it
back), after ``--warmup`` untimed rounds; then ``--samples`` (30) rounds, every page once per
round (interleaved, so that load drift hits every page alike), each timed with
``time.perf_counter()`` from sending the request to the last byte of the body. Reported per
page: p50, p95, max (ms) and the body's size (the server does not compress; the gzip size is a
note only). Every page is checked before timing (status 200; the list pages have the expected
number of ``<tr>`` rows in their ``tbody``; the detail pages name their flywheel/iteration), so a
broken page cannot look fast.

Pages: ``GET /`` (page 1 of 20, default filters), ``GET /?page=<last>``, ``GET /?q=<one
name>`` (matches one flywheel), ``GET /?state=ready`` (a filter that looks at every
flywheel), ``GET /flywheels/<name>``, ``GET /flywheels/<name>/iterations/latest`` and the same
iteration by its id.

Baseline, same run and server: the JSON API with a real boto3 client (any keys, loopback,
``retries={"max_attempts": 1}``): ``ListFlywheels(MaxResults=50)`` for the list page and
``DescribeFlywheelIteration`` for the iteration page. Ratio lines are console / API.

Targets (PASS/FAIL): ``GET /`` p95 <= 300 ms and <= 500 KB; the iteration page (latest and by
id) p95 <= 200 ms. ``--profile`` adds a cProfile of ``api.list_flywheels(open_repository(root))``
in this process (top 15 by cumulative time), and of the reads ``GET /`` makes without a state
filter (changed files in git, every name, the page's 50 views), which say where the list page's
time goes.

Usage: ``.venv/bin/python benchmarks/console.py [--repo DIR | --keep DIR] [--flywheels 1000]
[--samples 30] [--warmup 3] [--profile] [--json FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import http.client
import io
import json
import os
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FLYWHEEL, check_environment, machine_note, remove_tree
from api_latency import Server, client, percentile
from noop_reconcile import build_repository

PER_PAGE = 50
VERSIONS = 10
LIST_P95_TARGET_MS = 300.0
LIST_BYTES_TARGET = 500 * 1024
ITERATION_P95_TARGET_MS = 200.0
COOKIE = "flywheel_session"


# measuring ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One measured request and what its answer must hold."""

    label: str
    kind: str  # "page" or "api"
    fetch: Callable[[], tuple[int, bytes]]
    check: Callable[[bytes], str | None] = lambda body: None
    samples: list[float] = field(default_factory=list)  # seconds
    size: int = 0
    gzipped: int = 0
    note: str = ""

    def ms(self, q: float) -> float:
        return percentile(self.samples, q) * 1000

    def figures(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "n": len(self.samples),
                "p50_ms": self.ms(50), "p95_ms": self.ms(95), "max_ms": max(self.samples) * 1000,
                "bytes": self.size, "gzip_bytes": self.gzipped, "note": self.note}


class Browser:
    """One keep-alive loopback connection with a cookie jar, as a browser tab would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> tuple[int, bytes]:
        headers = {"Host": f"127.0.0.1:{self.port}", "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response.status, body

    def close(self) -> None:
        self.conn.close()


def tbody_rows(html: str) -> int:
    found = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    return len(re.findall(r"<tr[\s>]", found.group(1))) if found else 0


def matching(html: str) -> tuple[int, int]:
    """The list page's "N of M flywheels" count."""
    found = re.search(r"(\d+) of (\d+) flywheels?", html)
    return (int(found.group(1)), int(found.group(2))) if found else (-1, -1)


def expect_rows(count: int | None, total: int) -> Callable[[bytes], str | None]:
    """``count`` rows in the tbody (None: as many as the page says match, up to a page) and a
    count of ``total`` flywheels in all."""
    def check(body: bytes) -> str | None:
        html = body.decode("utf-8", "replace")
        matched, seen = matching(html)
        if seen != total:
            return f"the page counts {seen} flywheels in all, expected {total}"
        expected = min(PER_PAGE, matched) if count is None else count
        rows = tbody_rows(html)
        if rows != expected:
            return f"{rows} <tr> rows in the tbody, expected {expected}"
        return None
    return check


def expect_text(*texts: str) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        html = body.decode("utf-8", "replace")
        missing = [t for t in texts if t not in html]
        return f"the page does not contain {missing}" if missing else None
    return check


def verify(case: Case) -> None:
    status, body = case.fetch()
    if status != 200:
        raise RuntimeError(f"{case.label}: status {status}:\n{body[:2000]!r}")
    problem = case.check(body)
    if problem:
        raise RuntimeError(f"{case.label}: {problem}")
    case.size = len(body)
    case.gzipped = len(gzip.compress(body))
    if case.label.startswith("GET /?state="):
        matched, total = matching(body.decode("utf-8", "replace"))
        case.note = f"{matched} of {total} match"


def measure(cases: list[Case], samples: int, warmup: int) -> None:
    for _ in range(warmup):
        for case in cases:
            case.fetch()
    for _ in range(samples):
        for case in cases:
            started = time.perf_counter()
            status, _ = case.fetch()
            elapsed = time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"{case.label}: status {status} while timing")
            case.samples.append(elapsed)


# the cases ---------------------------------------------------------------------------------------


def page_cases(browser: Browser, count: int, name: str, iteration_id: str) -> list[Case]:
    pages = max(1, -(-count // PER_PAGE))
    last_rows = count - (pages - 1) * PER_PAGE
    q = name  # fw-NNN: exactly one flywheel has it in its name (fw-NNN0 exists past 10,000)
    iteration = f"/flywheels/{name}/iterations"

    def page(path: str) -> Callable[[], tuple[int, bytes]]:
        return lambda: browser.get(path)

    return [
        Case(f"GET / (page 1 of {pages})", "page", page("/"),
             expect_rows(min(PER_PAGE, count), count)),
        Case(f"GET /?page={pages} (last)", "page", page(f"/?page={pages}"),
             expect_rows(last_rows, count)),
        Case(f"GET /?q={q} (1 match)", "page", page(f"/?q={q}"), expect_rows(1, count)),
        Case("GET /?state=ready", "page", page("/?state=ready"), expect_rows(None, count)),
        Case(f"GET /flywheels/{name}", "page", page(f"/flywheels/{name}"), expect_text(name)),
        Case(f"GET {iteration}/latest", "page", page(f"{iteration}/latest"),
             expect_text(name, iteration_id)),
        Case(f"GET {iteration}/{iteration_id}", "page", page(f"{iteration}/{iteration_id}"),
             expect_text(name, iteration_id)),
    ]


def api_cases(boto: Any, arn: str, iteration_id: str) -> list[Case]:
    def call(method: Callable[[], dict[str, Any]]) -> Callable[[], tuple[int, bytes]]:
        def fetch() -> tuple[int, bytes]:
            answer = method()
            meta = answer["ResponseMetadata"]
            length = int(meta.get("HTTPHeaders", {}).get("content-length", 0))
            return int(meta["HTTPStatusCode"]), b" " * length  # only its length is used
        return fetch

    return [
        Case("API ListFlywheels(MaxResults=50)", "api",
             call(lambda: boto.list_flywheels(MaxResults=PER_PAGE))),
        Case("API DescribeFlywheelIteration", "api",
             call(lambda: boto.describe_flywheel_iteration(FlywheelArn=arn,
                                                           FlywheelIterationId=iteration_id))),
    ]


# the repository ----------------------------------------------------------------------------------


@contextlib.contextmanager
def repository(args: argparse.Namespace) -> Iterator[Path]:
    """The repository to serve: ``--repo`` as is, ``--keep`` built and kept, else temporary."""
    if args.repo is not None:
        root = args.repo.resolve()
        specs = len(list((root / "specs").glob("*.yaml")))
        if specs != args.flywheels:
            sys.exit(f"{root} holds {specs} specs, not {args.flywheels} (--flywheels)")
        print(f"reusing {root}: {specs} specs")
        yield root
        return
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            root = args.keep.resolve()
            remove_tree(root)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="bench-console-"))) / "repo"
        root.mkdir(parents=True)
        print(f"building {args.flywheels} flywheels x {VERSIONS} dataset versions in {root} ...",
              flush=True)
        for phase, seconds in build_repository(root, args.flywheels, VERSIONS).items():
            print(f"  {phase:36s} {seconds:7.1f} s")
        yield root


def profile_list(root: Path) -> list[str]:
    """``api.list_flywheels(open_repository(root))`` in this process, under cProfile."""
    from reconciler import api
    from reconciler.api import open_repository

    started = time.perf_counter()
    api.list_flywheels(open_repository(root))  # first call: cold in this process
    cold = time.perf_counter() - started
    repo = open_repository(root)
    started = time.perf_counter()
    api.list_flywheels(repo)
    fresh = time.perf_counter() - started
    profiler = cProfile.Profile()
    profiler.enable()
    views = api.list_flywheels(repo)
    api.uncommitted(repo)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
    lines = [f"in-process api.list_flywheels: {len(views)} views; first call {cold * 1000:.0f} ms,"
             f" second (new repository handle) {fresh * 1000:.0f} ms; cProfile of a third "
             "call + api.uncommitted (same handle), top 15 cumulative:"]
    lines += [line for line in out.getvalue().splitlines() if line.strip()]
    if hasattr(api, "flywheel_names"):  # the list page's reads without a state filter
        lines += page_profile(repo)
    return lines


def page_profile(repo: Any) -> list[str]:
    """What ``GET /`` reads without a state filter: git's changed files, every name, and the
    views of the page's 50 flywheels; each timed (warm, median of 5), then under cProfile."""
    from statistics import median

    from reconciler import api

    names = api.flywheel_names(repo)
    page = set(names[:PER_PAGE])
    steps: dict[str, Callable[[], object]] = {
        "api.uncommitted (git)": lambda: api.uncommitted(repo),
        "api.flywheel_names": lambda: api.flywheel_names(repo),
        f"api.list_flywheels({len(page)} names)": lambda: api.list_flywheels(repo, page),
    }
    lines = ["in-process, the reads of GET / (no state filter), warm, median of 5:"]
    for label, step in steps.items():
        seconds = []
        for _ in range(5):
            started = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - started)
        lines.append(f"  {label:32s} {median(seconds) * 1000:7.1f} ms")
    profiler = cProfile.Profile()
    profiler.enable()
    for step in steps.values():
        step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
    lines.append("cProfile of those three reads, top 15 cumulative:")
    lines += [line for line in out.getvalue().splitlines() if line.strip()]
    return lines


# reporting ---------------------------------------------------------------------------------------


def table(cases: list[Case]) -> list[str]:
    lines = ["| request | p50 ms | p95 ms | max ms | KB | gzip KB (note) | target | verdict |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for case in cases:
        target, verdict = targets(case)
        note = f" ({case.note})" if case.note else ""
        gz = f"{case.gzipped / 1024:.1f}" if case.kind == "page" else "—"
        lines.append(f"| {case.label}{note} | {case.ms(50):.1f} | {case.ms(95):.1f} | "
                     f"{max(case.samples) * 1000:.1f} | {case.size / 1024:.1f} | {gz} | "
                     f"{target or '—'} | {verdict or '—'} |")
    return lines


def targets(case: Case) -> tuple[str, str]:
    if case.label.startswith("GET / (page 1"):
        ok = case.ms(95) <= LIST_P95_TARGET_MS and case.size <= LIST_BYTES_TARGET
        return (f"p95 <= {LIST_P95_TARGET_MS:g} ms, <= {LIST_BYTES_TARGET // 1024} KB",
                "PASS" if ok else "FAIL")
    if "/iterations/" in case.label:
        return (f"p95 <= {ITERATION_P95_TARGET_MS:g} ms",
                "PASS" if case.ms(95) <= ITERATION_P95_TARGET_MS else "FAIL")
    return "", ""


def ratio(label: str, ours: Case, baseline: Case) -> str:
    return (f"{label}: {ours.ms(50) / baseline.ms(50):.1f}x (p50), "
            f"{ours.ms(95) / baseline.ms(95):.1f}x (p95); size "
            f"{ours.size / max(baseline.size, 1):.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--repo", type=Path, help="serve this already built repository")
    where.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--flywheels", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile api.list_flywheels in this process")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    check_environment()
    print(machine_note())
    with repository(args) as root, tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        server = Server("flywheel serve", [FLYWHEEL, "-C", str(root), "serve", "--no-watch",
                                           "--port", "{port}", "--log-format", "json"],
                        Path(tmp) / "serve.log", Path(tmp))
        browser = Browser(server.port)
        try:
            boto = client(server.url)
            listed = boto.list_flywheels(MaxResults=PER_PAGE)["FlywheelSummaryList"]
            first = listed[len(listed) // 2]  # a flywheel from the middle of page 1
            arn = first["FlywheelArn"]
            name = arn.rsplit("/", 1)[-1]
            history = boto.list_flywheel_iteration_history(FlywheelArn=arn)
            iteration_id = history["FlywheelIterationPropertiesList"][-1]["FlywheelIterationId"]
            started = time.perf_counter()
            status, _ = browser.get("/")
            cold = time.perf_counter() - started
            if COOKIE not in browser.cookies:
                raise RuntimeError(f"the first GET / (status {status}) set no {COOKIE} cookie")
            cases = page_cases(browser, args.flywheels, name, iteration_id)
            cases += api_cases(boto, arn, iteration_id)
            for case in cases:
                verify(case)
            print(f"first GET / (cold server): {cold * 1000:.0f} ms; session cookie set; "
                  f"every page checked (status 200, rows / names present)")
            print(f"measuring: {args.warmup} warm-up rounds, then {args.samples} rounds of "
                  f"{len(cases)} requests (interleaved, one keep-alive connection) ...",
                  flush=True)
            measure(cases, args.samples, args.warmup)
        finally:
            browser.close()
            server.stop()
        log_errors = [line for line in server.log.read_text("utf-8", "replace").splitlines()
                      if "Traceback" in line or '"level": "error"' in line.lower()]
        report(cases, args, log_errors, root)
    return 0


def report(cases: list[Case], args: argparse.Namespace, log_errors: list[str],
           root: Path) -> None:
    by = {case.label: case for case in cases}
    first = next(c for c in cases if c.label.startswith("GET / (page 1"))
    latest = next(c for c in cases if c.label.endswith("/latest"))
    by_id = next(c for c in cases if "/iterations/" in c.label and c is not latest)
    listing, describe = by["API ListFlywheels(MaxResults=50)"], by["API DescribeFlywheelIteration"]
    print()
    print(f"{args.flywheels} flywheels x {VERSIONS} dataset versions; {len(first.samples)} "
          "samples per request; ms from sending the request to the body's last byte; KB = "
          "body bytes sent (no compression; gzip size only a note)")
    print()
    for line in table(cases):
        print(line)
    print()
    print(ratio("console GET / (50 rows) / API ListFlywheels(MaxResults=50)", first, listing))
    print(ratio("console iteration page (latest) / API DescribeFlywheelIteration", latest,
                describe))
    print(ratio("console iteration page (by id)  / API DescribeFlywheelIteration", by_id,
                describe))
    print()
    verdicts = [
        (first.ms(95) <= LIST_P95_TARGET_MS,
         f"flywheels page, {args.flywheels} flywheels: p95 {first.ms(95):.1f} ms "
         f"<= {LIST_P95_TARGET_MS:g} ms"),
        (first.size <= LIST_BYTES_TARGET,
         f"flywheels page transfers {first.size / 1024:.1f} KB <= "
         f"{LIST_BYTES_TARGET // 1024} KB"),
        (latest.ms(95) <= ITERATION_P95_TARGET_MS,
         f"iteration page (latest): p95 {latest.ms(95):.1f} ms <= "
         f"{ITERATION_P95_TARGET_MS:g} ms"),
        (by_id.ms(95) <= ITERATION_P95_TARGET_MS,
         f"iteration page (by id): p95 {by_id.ms(95):.1f} ms <= {ITERATION_P95_TARGET_MS:g} ms"),
        (not log_errors, f"no error line in the server log: {len(log_errors)}"),
    ]
    for ok, line in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    profile = profile_list(root) if args.profile else []
    if profile:
        print()
        for line in profile:
            print(line)
    print()
    print(machine_note())
    if args.json:
        figures = {"machine": machine_note(), "flywheels": args.flywheels,
                   "samples": args.samples, "warmup": args.warmup,
                   "cases": [c.figures() for c in cases],
                   "verdicts": [{"pass": ok, "target": line} for ok, line in verdicts],
                   "server_log_errors": log_errors[:20], "profile": profile}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
