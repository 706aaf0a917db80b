"""The ``flywheel`` argument parser: every command, its options and its handler.

Building it imports no command module's dependencies: each handler imports what it needs when it
runs, so ``flywheel --help`` and the daemon's warm workers start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.cli.commands import inspecting, reconciling, serving, setup, suggest
from reconciler.cli.options import (
    executor_options,
    gitops_options,
    log_format_option,
    push_options,
    seconds,
)

Handler = Callable[..., int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=(
        "Keep text classifiers improving as labelled data arrives: specs in git, "
        "iterations through DVC, Comprehend-style records."))
    parser.add_argument("-C", "--repo", type=Path, default=Path("."),
                        help="the repository (default: the current folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, help_: str, *,
                output: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        if output:
            p.add_argument("-o", "--output", choices=("table", "json"), default="table")
        return p

    # in the order `flywheel --help` lists them
    _running(command)
    _serving(command)
    _git(command)
    _checking(command)
    _inspecting(command)
    _setup(command)
    return parser


def _running(command: Any) -> None:
    p = command("reconcile", reconciling.reconcile,
                "Iterate and promote until every flywheel matches its spec.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these flywheels")
    log_format_option(p)
    gitops_options(p)
    p.add_argument("--report", type=Path, metavar="FILE",
                   help="also write a Markdown report (for a pull-request comment) to FILE, "
                   "with PNG charts in a charts/ folder next to it")
    p.add_argument("--charts-url", metavar="URL", help="where the report's charts will be "
                   "published (links become URL/NAME-f1.png); default: relative paths")
    p.add_argument("--names-from-stdin", action="store_true", help="start up, then read the "
                   "flywheel names from one line of stdin; none: exit (a warm worker of `watch`)")
    executor_options(p)
    p = command("watch", reconciling.watch, "Serve as a daemon: reconcile whenever specs/ or "
                "data/ change, and every --resync seconds.", output=False)
    log_format_option(p)
    p.add_argument("--debounce", type=seconds, default=0.25, metavar="SECONDS",
                   help="quiet time that ends a burst of file events (default 0.25)")
    p.add_argument("--settle", type=seconds, default=1.0, metavar="SECONDS",
                   help="dataset files must be unchanged this long before training (default 1)")
    p.add_argument("--resync", type=seconds, default=300.0, metavar="SECONDS",
                   help="full pass even without events (default 300)")
    p.add_argument("--grace", type=seconds, default=60.0, metavar="SECONDS",
                   help="on SIGTERM, how long a running stage gets to finish (default 60)")
    p.add_argument("--max-iterations", type=int, default=None, metavar="N",
                   help="iterations running at once (default 1; with --executor dask://, the "
                   "cluster's slots: its workers' threads)")
    gitops_options(p)
    executor_options(p)
    command("status", reconciling.status,
            "What the watch daemon is doing now (exit 3 if not running).")
    p = command("iterate", reconciling.iterate, "Ask for an iteration of one flywheel now, even "
                "without new data or inside a retry back-off; the status acknowledges the "
                "request.")
    p.add_argument("name")
    p.add_argument("--no-wait", action="store_true",
                   help="only record the request (a running `flywheel watch` picks it up)")
    log_format_option(p)
    gitops_options(p)
    executor_options(p)


def _serving(command: Any) -> None:
    from reconciler.server import DEFAULT_PORT

    p = command("serve", serving.serve, "Serve Comprehend's flywheel API for this repository "
                "(boto3 and the aws CLI work unchanged) and its web console (open the URL in a "
                "browser), with the watch daemon beside it.",
                output=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1; any other needs --credentials-file)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--credentials-file", type=Path, metavar="FILE",
                   help="AWS shared-credentials file: every request must be SigV4-signed with "
                   "one of its keys, and the console asks for one")
    p.add_argument("--allow-local", type=Path, action="append", metavar="FOLDER",
                   help="a folder CreateDataset may read local files from (repeatable; "
                   "default: the repository's data/)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not start the watch daemon (another process reconciles)")
    log_format_option(p)
    executor_options(p)


def _checking(command: Any) -> None:
    p = command("plan", reconciling.plan, "What a reconcile would do and why, per flywheel; "
                "changes nothing. Exit 0: nothing to do, 1: changes pending, 2: errors.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these flywheels")
    command("validate", reconciling.validate, "Check every spec and dataset file; write nothing.")


def _inspecting(command: Any) -> None:
    command("list", inspecting.list_, "List flywheels: active model, latest iteration, F1, "
            "conditions.")
    p = command("describe", inspecting.describe, "Describe one flywheel (DescribeFlywheel).")
    p.add_argument("name")
    p = command("iterations", inspecting.iterations,
                "A flywheel's iteration history (ListFlywheelIterationHistory).")
    p.add_argument("name")
    p = command("iteration", inspecting.iteration,
                "One iteration with per-label F1 (DescribeFlywheelIteration).")
    p.add_argument("name")
    p.add_argument("iteration_id", metavar="ID",
                   help="an iteration id (see `flywheel iterations NAME`), or latest")
    p = command("classify", inspecting.classify,
                "Classify text with the active model (or --version).")
    p.add_argument("name")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("-f", "--file", type=Path, help="one document per line ('-' = stdin)")
    p.add_argument("--version", help="a model version other than the active one, e.g. v2")
    p.add_argument("--top", type=int, default=3, help="scores to show per document")
    p.add_argument("--raw-scores", action="store_true",
                   help="also show each label's raw classifier score before calibration "
                   "(SVM margin, logit or log-likelihood); JSON: RawScore, RawScoreKind")
    suggest.add_arguments(command("suggest", suggest.suggest, "Which unlabelled documents to "
                                  "label next: rank a pool by the active model's uncertainty "
                                  "(with a diversity step) and write a labelling file."))
    p = command("plot", inspecting.plot,
                "Chart F1 across iterations and per-label F1 (PNG or SVG).", output=False)
    p.add_argument("name")
    p.add_argument("--out", type=Path, help="image file, .png or .svg (default: "
                   ".flywheel/charts/NAME-f1.png in the repository, which git ignores)")
    command("schema", inspecting.schema, "Print the spec's JSON Schema.", output=False)


def _git(command: Any) -> None:
    command("install-hook", setup.install_hook, "Install git hooks (post-commit, post-merge) "
            "that reconcile in the background when specs/ or data/ changed.", output=False)
    p = command("publish", setup.publish, "After a reconcile (CI): dvc push the models, commit "
                "the lake records and pipeline locks, and push.", output=False)
    push_options(p, push_help="git push the commit (rebasing if needed)")
    p.add_argument("--dvc-remote", help="DVC remote (default: the repository's default remote)")
    p.add_argument("--no-dvc-push", action="store_true", help="leave the models where they are")
    p.add_argument("--message", default=None, help="commit message")


def _setup(command: Any) -> None:
    p = command("init", setup.init, "Make a folder a flywheel repository (git + DVC + layout) "
                "and commit what it created.", output=False)
    p.add_argument("path", type=Path, nargs="?", default=Path("."))
    p.add_argument("--remote", metavar="PATH_OR_URL", help="set the default DVC remote, where "
                   "`flywheel publish` and `dvc push` send the models (a folder, s3://…, ssh://…)")
    p = command("demo", setup.demo, "Replay the bundled example's dataset versions in a scratch "
                "repository: the flywheel turns, F1 moves, the policy promotes.", output=False)
    p.add_argument("--workdir", type=Path, help="where to build the scratch repository")
