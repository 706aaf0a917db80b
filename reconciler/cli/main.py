"""``flywheel``: the command line. Thin: parse, call the library, render, map errors to exits.

Exit codes: 0 success; 1 one or more flywheels (or spec files) failed, the others were handled;
2 the command itself could not run (usage, not a repository, unknown flywheel, a daemon already
serving the repository); 3 ``status``: no daemon is running; 130 a stop was asked for (SIGTERM,
Ctrl-C) and work was set aside for the next reconcile.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from reconciler.cli.options import (
    gitops_argv,
    gitops_from,
    gitops_options,
    log_format_option,
    push_options,
    seconds,
)
from reconciler.errors import FlywheelError

if TYPE_CHECKING:
    from reconciler.runtime.writeback import GitOps

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_STOPPED = 0, 1, 2, 3, 130
#: Columns of tables printed to a pipe or file (no terminal to measure).
NON_TERMINAL_WIDTH = 240


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    out, err = _console(stderr=False), _console(stderr=True)
    try:
        return args.handler(args, out, err)
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return EXIT_STOPPED
    except MemoryError:  # reading a dataset says which; anything else is one line too
        err.print("error: out of memory: the command could not allocate more memory (raise its "
                  "memory limit or free memory, then retry)", markup=False, highlight=False,
                  soft_wrap=True)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=(
        "Keep text classifiers improving as labelled data arrives: specs in git, "
        "iterations through DVC, Comprehend-style records."))
    parser.add_argument("-C", "--repo", type=Path, default=Path("."),
                        help="the repository (default: the current folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler, help_: str, *, output: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        if output:
            p.add_argument("-o", "--output", choices=("table", "json"), default="table")
        return p

    p = command("reconcile", _reconcile,
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
    p = command("watch", _watch, "Serve as a daemon: reconcile whenever specs/ or data/ "
                "change, and every --resync seconds.", output=False)
    log_format_option(p)
    p.add_argument("--debounce", type=seconds, default=0.25, metavar="SECONDS",
                   help="quiet time that ends a burst of file events (default 0.25)")
    p.add_argument("--settle", type=seconds, default=1.0, metavar="SECONDS",
                   help="dataset files must be unchanged this long before training (default 1)")
    p.add_argument("--resync", type=seconds, default=300.0, metavar="SECONDS",
                   help="full pass even without events (default 300)")
    p.add_argument("--grace", type=seconds, default=60.0, metavar="SECONDS",
                   help="on SIGTERM, how long a running stage gets to finish (default 60)")
    p.add_argument("--max-iterations", type=int, default=1, metavar="N",
                   help="iterations running at once (default 1; DVC runs them one by one)")
    gitops_options(p)
    command("status", _status, "What the watch daemon is doing now (exit 3 if not running).")
    p = command("iterate", _iterate, "Ask for an iteration of one flywheel now, even without new "
                "data or inside a retry back-off; the status acknowledges the request.")
    p.add_argument("name")
    p.add_argument("--no-wait", action="store_true",
                   help="only record the request (a running `flywheel watch` picks it up)")
    log_format_option(p)
    gitops_options(p)
    command("install-hook", _install_hook, "Install git hooks (post-commit, post-merge) that "
            "reconcile in the background when specs/ or data/ changed.", output=False)
    p = command("publish", _publish, "After a reconcile (CI): dvc push the models, commit the "
                "lake records and pipeline locks, and push.", output=False)
    push_options(p, push_help="git push the commit (rebasing if needed)")
    p.add_argument("--dvc-remote", help="DVC remote (default: the repository's default remote)")
    p.add_argument("--no-dvc-push", action="store_true", help="leave the models where they are")
    p.add_argument("--message", default=None, help="commit message")
    p = command("plan", _plan, "What a reconcile would do and why, per flywheel; changes "
                "nothing. Exit 0: nothing to do, 1: changes pending, 2: errors.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these flywheels")
    p = command("validate", _validate, "Check every spec and dataset file; write nothing.")
    command("list", _list, "List flywheels: active model, latest iteration, F1, conditions.")
    p = command("describe", _describe, "Describe one flywheel (DescribeFlywheel).")
    p.add_argument("name")
    p = command("iterations", _iterations,
                "A flywheel's iteration history (ListFlywheelIterationHistory).")
    p.add_argument("name")
    p = command("iteration", _iteration,
                "One iteration with per-label F1 (DescribeFlywheelIteration).")
    p.add_argument("name")
    p.add_argument("iteration_id", metavar="ID",
                   help="an iteration id (see `flywheel iterations NAME`), or latest")
    p = command("classify", _classify, "Classify text with the active model (or --version).")
    p.add_argument("name")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("-f", "--file", type=Path, help="one document per line ('-' = stdin)")
    p.add_argument("--version", help="a model version other than the active one, e.g. v2")
    p.add_argument("--top", type=int, default=3, help="scores to show per document")
    p.add_argument("--raw-scores", action="store_true",
                   help="also show each label's raw classifier score before calibration "
                   "(SVM margin, logit or log-likelihood); JSON: RawScore, RawScoreKind")
    p = command("plot", _plot, "Chart F1 across iterations and per-label F1 (PNG or SVG).",
                output=False)
    p.add_argument("name")
    p.add_argument("--out", type=Path, help="image file, .png or .svg (default: "
                   ".flywheel/charts/NAME-f1.png in the repository, which git ignores)")
    command("schema", _schema, "Print the spec's JSON Schema.", output=False)
    p = command("init", _init, "Make a folder a flywheel repository (git + DVC + layout) and "
                "commit what it created.", output=False)
    p.add_argument("path", type=Path, nargs="?", default=Path("."))
    p.add_argument("--remote", metavar="PATH_OR_URL", help="set the default DVC remote, where "
                   "`flywheel publish` and `dvc push` send the models (a folder, s3://…, ssh://…)")
    p = command("demo", _demo, "Replay the bundled example's dataset versions in a scratch "
                "repository: the flywheel turns, F1 moves, the policy promotes.", output=False)
    p.add_argument("--workdir", type=Path, help="where to build the scratch repository")
    return parser


def _root(args: argparse.Namespace) -> Path:
    root = args.repo.resolve()
    if not (root / "specs").is_dir():
        raise FlywheelError(f"{root} has no specs/ folder (run `flywheel init` to create one)")
    return root


def _console(*, stderr: bool) -> Console:
    """A terminal gets rich output at its width; a pipe or a log file gets the full tables.

    Without a terminal, rich assumes 80 columns and cuts table cells to ``…``; CI logs and
    ``flywheel list > file`` deserve every figure, so they get a wide, colourless console.
    """
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, width=NON_TERMINAL_WIDTH, no_color=True)


def _reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    root = _root(args)
    gitops = gitops_from(args)
    names = set(args.names)
    if args.names_from_stdin:
        names |= set(sys.stdin.readline().split())
        if not names:
            return EXIT_OK
    return _run_reconcile(root, names, err, log_format=args.log_format, output=args.output,
                          gitops=gitops, report_file=args.report, charts_url=args.charts_url)


def _run_reconcile(root: Path, names: set[str], err: Console, *, log_format: str, output: str,
                   gitops: GitOps | None = None, report_file: Path | None = None,
                   charts_url: str | None = None) -> int:
    """One reconcile with progress lines, a summary and the exit code (``reconcile``,
    ``iterate``)."""
    from reconciler.cli.render import (
        Progress,
        print_json,
        reconcile_json,
        reconcile_summary,
        summary_fields,
    )
    from reconciler.runtime.logs import log_format as resolve_format
    from reconciler.runtime.reconcile import reconcile
    from reconciler.runtime.stopping import StopRequest, graceful_signals

    fmt = resolve_format(log_format, err)
    progress = Progress(err, fmt)
    stop = StopRequest()
    notice = "stopping after the current stage (send it again to stop now)"
    try:
        with graceful_signals(stop, notice=notice):
            result = reconcile(root, report=progress, only=names or None, stop=stop,
                               gitops=gitops)
    finally:
        progress.stop()
    if report_file is not None:
        from reconciler.reports.markdown import markdown_report

        report_file = report_file.resolve()
        report_file.parent.mkdir(parents=True, exist_ok=True)
        markdown = markdown_report(root, result, charts_dir=report_file.parent / "charts",
                                   charts_url=charts_url)
        report_file.write_text(markdown, "utf-8")
    if output == "json":
        print_json(reconcile_json(result))
    elif fmt == "json":
        progress.lines.write(summary_fields(result))
    else:
        hint = _publish_hint(root) if result.changed else None
        if hint:  # before the summary: the last line of a reconcile is always its summary
            err.print(hint, markup=False, highlight=False, soft_wrap=True)
        err.print(reconcile_summary(result), highlight=False)
    if result.stopped:
        return EXIT_STOPPED
    return EXIT_OK if result.ok else EXIT_FAILED


def _publish_hint(root: Path) -> str | None:
    """One line after a reconcile that left lake/ or pipelines/ uncommitted: what to run."""
    from reconciler.adapters import dvc, git

    revision = git.revision(root, ("lake", "pipelines"))
    if revision is None or not revision.changed:
        return None
    if dvc.default_remote(root) is None:
        return ("hint: lake/ and pipelines/ have uncommitted changes; set a DVC remote for the "
                "models (`flywheel init --remote PATH_OR_URL`), then run `flywheel publish`")
    return ("hint: lake/ and pipelines/ have uncommitted changes: `flywheel publish` pushes the "
            "models to the DVC remote and commits them")


def _watch(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.daemon.loop import WatchDaemon, WatchOptions
    from reconciler.runtime.logs import LineWriter, log_format

    if args.max_iterations < 1:
        raise FlywheelError("--max-iterations must be at least 1")
    options = WatchOptions(quiet=args.debounce, settle=args.settle, resync=max(args.resync, 1.0),
                           grace=args.grace, max_iterations=args.max_iterations)
    lines = LineWriter(err, log_format(args.log_format, err))
    gitops_from(args)  # refuse a bad template before serving
    return WatchDaemon(_root(args), options, lines, job_args=gitops_argv(args)).run()


def _status(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json, watch_status_text
    from reconciler.daemon.status import STATUS_FILE, read_status, running_pid
    from reconciler.errors import StateError

    root = _root(args)
    pid = running_pid(root)
    status = read_status(root)
    if args.output == "json":
        print_json({"Running": pid is not None, "Status": status})
    else:
        try:
            text = watch_status_text(status, running=pid is not None)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise StateError(f"corrupt daemon status file: {type(exc).__name__}: "
                             f"{str(exc)[:200]}", file=STATUS_FILE) from exc
        out.print(text, highlight=False)
    return EXIT_OK if pid is not None else EXIT_NOT_RUNNING


def _plan(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import plan_json, plan_state, plan_table, print_json
    from reconciler.runtime.queries import all_views

    root = _root(args)
    views = all_views(root, set(args.names) or None, check_data=True)
    unknown = set(args.names) - {v.name for v in views}
    if unknown:
        raise FlywheelError(f"no flywheel named {', '.join(sorted(unknown))} under specs/")
    if args.output == "json":
        print_json(plan_json(views))
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


def _iterate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.adapters.lake import Lake
    from reconciler.adapters.requests import new_request
    from reconciler.runtime.queries import view

    root = _root(args)
    v = view(root, args.name)
    token = new_request(root, v.name)
    if args.no_wait:
        err.print(f"requested an iteration of {v.name} (request {token}); a running "
                  "`flywheel watch` or the next reconcile answers it", highlight=False)
        return EXIT_OK
    code = _run_reconcile(root, {v.name}, err, log_format=args.log_format, output=args.output,
                          gitops=gitops_from(args))
    status = Lake(root).observe(v.name).status
    if status is not None and status.last_handled_iteration_request == token:
        err.print(f"request {token} handled", highlight=False)
    else:
        err.print(f"request {token} not handled yet (another reconciler holds {v.name}; it "
                  "will answer it)", highlight=False)
    return code


def _install_hook(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.gitops.hooks import install_hooks

    for path in install_hooks(_root(args)):
        err.print(f"installed {path}")
    return EXIT_OK


def _publish(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.gitops.publish import DEFAULT_MESSAGE, publish

    done = publish(_root(args), dvc_push=not args.no_dvc_push, dvc_remote=args.dvc_remote,
                   push=args.push, remote=args.remote, message=args.message or DEFAULT_MESSAGE,
                   skip_ci=args.skip_ci_marker)
    err.print(f"files pushed to the DVC remote: {done.models_pushed}; commit: "
              f"{done.commit or 'none (nothing changed)'}"
              + (f"; pushed to {done.pushed_to}" if done.pushed_to else ""), highlight=False)
    return EXIT_OK


def _validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json
    from reconciler.runtime.queries import all_views

    views = all_views(_root(args), check_data="all")
    problems = [v for v in views if v.error]
    # one line per problem: a file with four mistakes lists all four (bounded, see errors.py)
    lines = [line for v in problems if v.error for line in v.error.lines()]
    if args.output == "json":
        print_json({"Valid": not problems, "Errors": lines})
    else:
        for line in lines:
            err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(views) - len(problems)} valid, {len(problems)} invalid")
    return EXIT_FAILED if problems else EXIT_OK


def _list(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import flywheel_table, print_json
    from reconciler.core.comprehend import flywheel_summary
    from reconciler.runtime.queries import all_views

    views = all_views(_root(args))
    if args.output == "json":
        print_json({"FlywheelSummaryList": [
            flywheel_summary(v.spec_file.spec, v.observed, v.message)
            for v in views if v.spec_file]})
    else:
        out.print(flywheel_table(views))
    for v in views:  # a spec that does not load, or records that cannot be read
        if v.spec_file is None or v.lake_error is not None:
            err.print(f"error: {v.lake_error or v.error}", markup=False, highlight=False,
                      soft_wrap=True)
    return EXIT_FAILED if any(v.error for v in views) else EXIT_OK


def _describe(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json, version_f1
    from reconciler.core.comprehend import flywheel_properties
    from reconciler.core.state import version_number
    from reconciler.runtime.queries import view

    v = view(_root(args), args.name, records=True)
    if v.spec_file is None:
        raise v.error  # type: ignore[misc]
    props = flywheel_properties(v.spec_file.spec, v.observed, v.message)
    if args.output == "json":
        print_json({"FlywheelProperties": props})
        return EXIT_FAILED if v.error else EXIT_OK
    spec = v.spec_file.spec
    out.print(f"[bold]{spec.name}[/]  ({v.spec_file.path})")
    out.print(f"  mode            {spec.task.mode.value}, {len(spec.task.labels)} labels: "
              f"{', '.join(spec.task.labels)}", highlight=False)
    out.print(f"  active model    {version_f1(v.observed, v.observed.active_model)}"
              f"{' (pinned)' if v.observed.status and v.observed.status.pinned else ''}",
              highlight=False)
    versions = sorted(v.observed.versions, key=version_number)
    out.print("  versions        " + (", ".join(version_f1(v.observed, version)
                                                for version in versions) or "—"),
              highlight=False)
    out.print("  datasets        " + ", ".join(f"{d.name} ({d.type.value})" for d in
                                                spec.datasets), highlight=False)
    out.print(f"  recipe          {spec.recipe.algorithm}")
    policy = spec.promotion
    out.print("  promotion       " + (f"minF1 {policy.min_f1}, minImprovement "
                                       f"{policy.min_improvement}" if policy else "manual"))
    for condition in v.conditions:
        colour = "green" if condition.status and condition.type == "Ready" else "yellow"
        out.print(f"  [{colour}]{condition.type}={condition.status}[/] {condition.reason}: "
                  f"{condition.message}", highlight=False)
    if v.observed.status and v.observed.status.promotions:
        out.print("  promotions:")
        for p in v.observed.status.promotions[-10:]:
            out.print(f"    {p.version} ← {p.previous_version or '—'} {p.kind}: {p.reason}",
                      highlight=False)
    return EXIT_FAILED if v.error else EXIT_OK


def _iterations(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import iterations_table, print_json
    from reconciler.core.comprehend import list_flywheel_iteration_history
    from reconciler.runtime.queries import view

    v = view(_root(args), args.name, records=True)
    records = list(v.observed.iterations)
    if args.output == "json":
        print_json(list_flywheel_iteration_history(records))
    else:
        out.print(iterations_table(v.name, records))
    return EXIT_OK


def _iteration(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.adapters.lake import Lake
    from reconciler.cli.render import calibration_text, f1, per_label_table, print_json
    from reconciler.core.comprehend import describe_flywheel_iteration
    from reconciler.runtime.queries import iteration, view

    root = _root(args)
    v = view(root, args.name, records=True)
    record = iteration(v, args.iteration_id)
    if args.output == "json":
        print_json(describe_flywheel_iteration(record))
        return EXIT_OK
    lake = Lake(root)
    out.print(f"[bold]{v.name}[/] iteration {record.flywheel_iteration_id}: "
              f"{record.status.value}")
    out.print(f"  {record.message}", highlight=False)
    out.print(f"  trained {record.trained_model_version or '—'} F1 "
              f"{f1(record.trained_f1)}; active "
              f"{record.evaluated_model_version or '—'} F1 "
              f"{f1(record.active_f1)} on "
              f"{record.number_of_test_documents} test documents ({record.test_source})")
    if record.decision:
        out.print(f"  promotion: {'yes' if record.decision.promote else 'no'} — "
                  f"{record.decision.reason}", highlight=False)
    trained = lake.evaluation(v.name, record.flywheel_iteration_id, "trained")
    active = lake.evaluation(v.name, record.flywheel_iteration_id, "active")
    calibration = calibration_text(record, trained, active)
    if calibration:
        out.print(f"  calibration: {calibration}", highlight=False)
    if trained:
        out.print(per_label_table(trained, active))
    return EXIT_OK


def _classify(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import classification_table, print_json
    from reconciler.runtime.classify import Classification, classify

    texts = list(args.texts)
    if args.file:
        handle = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")
        with handle:
            texts.extend(line.rstrip("\n") for line in handle if line.strip())
    if not texts:
        raise FlywheelError("give some text to classify (arguments or --file)")
    version, results = classify(_root(args), args.name, texts, args.version,
                                raw=args.raw_scores)
    if args.output == "json":
        def entry(c: Classification, name: str) -> dict[str, object]:
            raw = {} if c.raw_scores is None else {"RawScore": c.raw_scores[name]}
            return {"Name": name, "Score": c.scores[name], **raw}

        print_json({"ModelVersion": version, "Results": [
            {"Text": c.text, "Labels": [entry(c, n) for n in c.labels],
             "Classes": [entry(c, n) for n in c.scores],
             "ScoreKind": c.score_kind,
             **({"RawScoreKind": c.raw_score_kind} if c.raw_scores is not None else {})}
            for c in results]})
    else:
        out.print(classification_table(version, results, args.top))
    return EXIT_OK


def _plot(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.reports.chart import default_chart_path, write_chart
    from reconciler.runtime.queries import view

    root = _root(args)
    v = view(root, args.name, records=True)
    target = args.out or default_chart_path(root, v.name)
    write_chart(root, v, target)
    err.print(f"wrote {target}", highlight=False, soft_wrap=True)
    return EXIT_OK


def _schema(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json
    from reconciler.core.spec import json_schema

    print_json(json_schema())
    return EXIT_OK


def _init(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.gitops.scaffold import init_repository

    path = args.path.resolve()
    done = init_repository(path, args.remote)
    commit = f"committed {done.commit[:12]}" if done.commit else "nothing new to commit"
    err.print(f"initialised a flywheel repository in {path} ({commit})", highlight=False)
    if done.remote is None:
        err.print("no DVC remote for the models yet: `flywheel init --remote PATH_OR_URL` "
                  "sets one", highlight=False)
    err.print("next: your data under data/, a spec under specs/ (see `flywheel schema`), "
              "commit them, then `flywheel reconcile`", highlight=False)
    return EXIT_OK


def _demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.demo import run_demo

    return run_demo(args.workdir, out, err)

