"""``reconcile``, ``iterate``, ``watch``, ``status``, ``plan``, ``validate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from reconciler.cli.commands import repository
from reconciler.cli.exits import EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from reconciler.cli.options import executor_argv, gitops_argv, gitops_from
from reconciler.errors import FlywheelError

if TYPE_CHECKING:
    from reconciler.api import Repository
    from reconciler.runtime.executor import IterationExecutor
    from reconciler.runtime.writeback import GitOps


def reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    repo = repository(args)
    gitops = gitops_from(args)
    names = set(args.names)
    if args.names_from_stdin:
        names |= set(sys.stdin.readline().split())
        if not names:
            return EXIT_OK
    return run_reconcile(repo, names, err, log_format=args.log_format, output=args.output,
                         gitops=gitops, report_file=args.report, charts_url=args.charts_url,
                         executor=executor_of(args))


def executor_of(args: argparse.Namespace) -> IterationExecutor:
    """``--executor`` and ``--exchange`` (or their environment variables) as an executor."""
    from reconciler.runtime.executor import executor_from

    return executor_from(args.executor, args.exchange)


def run_reconcile(repo: Repository, names: set[str], err: Console, *, log_format: str,
                  output: str, gitops: GitOps | None = None, report_file: Path | None = None,
                  charts_url: str | None = None,
                  executor: IterationExecutor | None = None) -> int:
    """One reconcile with progress lines, a summary and the exit code (``reconcile``,
    ``iterate``)."""
    from reconciler import api
    from reconciler.cli.render import Progress, print_json
    from reconciler.cli.text import publish_hint, reconcile_summary
    from reconciler.core.responses import reconcile_counts, reconcile_response
    from reconciler.runtime.logs import log_format as resolve_format
    from reconciler.runtime.stopping import StopRequest, graceful_signals

    fmt = resolve_format(log_format, err)
    progress = Progress(err, fmt)
    stop = StopRequest()
    notice = "stopping after the current stage (send it again to stop now)"
    try:
        with graceful_signals(stop, notice=notice):
            result = api.reconcile(repo, names or None, report=progress, stop=stop,
                                   gitops=gitops, executor=executor)
    finally:
        progress.stop()
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    if report_file is not None:
        api.write_report(repo, result, report_file, charts_url=charts_url)
    if output == "json":
        print_json(reconcile_response(result))
    elif fmt == "json":
        progress.lines.write(reconcile_counts(result))
    else:
        hint = publish_hint(api.publish_state(repo)) if result.changed else None
        if hint:  # before the summary: the last line of a reconcile is always its summary
            err.print(hint, markup=False, highlight=False, soft_wrap=True)
        err.print(reconcile_summary(result), highlight=False)
    if result.stopped:
        return EXIT_STOPPED
    return EXIT_OK if result.ok else EXIT_FAILED


def iterate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api

    repo = repository(args)
    name = args.name
    token = api.request_iteration(repo, name)  # an unknown name is refused here
    if args.no_wait:
        err.print(f"requested an iteration of {name} (request {token}); a running "
                  "`flywheel watch` or the next reconcile answers it", highlight=False)
        return EXIT_OK
    code = run_reconcile(repo, {name}, err, log_format=args.log_format, output=args.output,
                         gitops=gitops_from(args), executor=executor_of(args))
    if api.request_handled(repo, name, token):
        err.print(f"request {token} handled", highlight=False)
    else:
        err.print(f"request {token} not handled yet (another reconciler holds {name}; it "
                  "will answer it)", highlight=False)
    return code


def watch(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.daemon.loop import WatchDaemon, WatchOptions
    from reconciler.runtime.logs import LineWriter, log_format

    if args.max_iterations is not None and args.max_iterations < 1:
        raise FlywheelError("--max-iterations must be at least 1")
    executor = executor_of(args)  # a bad --executor: refused before serving
    options = WatchOptions(quiet=args.debounce, settle=args.settle, resync=max(args.resync, 1.0),
                           grace=args.grace,
                           max_iterations=args.max_iterations or _slots(executor))
    lines = LineWriter(err, log_format(args.log_format, err))
    gitops_from(args)  # refuse a bad template before serving
    code: int = WatchDaemon(repository(args).root, options, lines,
                            job_args=gitops_argv(args) + executor_argv(args)).run()
    return code


def _slots(executor: IterationExecutor) -> int:
    """Iterations at once by default: one locally; a cluster's slots (its workers' threads)."""
    from reconciler.runtime.executor import slots_of

    try:
        return slots_of(executor)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()


def status(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json
    from reconciler.cli.text import watch_status_text
    from reconciler.core.responses import watch_status_response
    from reconciler.daemon.status import STATUS_FILE, read_status, running_pid
    from reconciler.errors import StateError

    root = repository(args).root
    pid = running_pid(root)
    current = read_status(root)
    if args.output == "json":
        print_json(watch_status_response(pid is not None, current))
    else:
        try:
            text = watch_status_text(current, running=pid is not None)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise StateError(f"corrupt daemon status file: {type(exc).__name__}: "
                             f"{str(exc)[:200]}", file=STATUS_FILE) from exc
        out.print(text, highlight=False)
    return EXIT_OK if pid is not None else EXIT_NOT_RUNNING


def plan(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import plan_table, print_json
    from reconciler.core.responses import plan_response, plan_state

    views = api.plan(repository(args), set(args.names) or None)
    if args.output == "json":
        print_json(plan_response(views))
    else:
        out.print(plan_table(views))
        for v in views:  # the table shows each error's first line; here every problem
            if v.error is not None and (len(v.error.lines()) > 1 or v.lake_error is not None):
                for line in v.error.lines():
                    err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    states = {plan_state(v) for v in views}
    if "ERROR" in states:
        return EXIT_USAGE
    return EXIT_FAILED if "PENDING" in states else EXIT_OK


def validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import print_json
    from reconciler.core.responses import validate_response

    checked = api.validate(repository(args))
    if args.output == "json":
        print_json(validate_response(checked.lines))
    else:
        for line in checked.lines:
            err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(checked.views) - len(checked.problems)} valid, "
                  f"{len(checked.problems)} invalid")
    return EXIT_OK if checked.valid else EXIT_FAILED
