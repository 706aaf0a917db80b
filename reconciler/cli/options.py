"""Command-line options that several ``flywheel`` commands share, and what they turn into.

Kept light: the write-back module is imported only when the options are turned into a
:class:`~reconciler.runtime.writeback.GitOps`, so building the parser costs no pydantic
or YAML import.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reconciler.adapters.git import SKIP_CI_MARKER

if TYPE_CHECKING:
    from reconciler.runtime.writeback import GitOps


#: ``--log-format``: ``auto`` is pretty on a terminal, plain lines anywhere else.
LOG_FORMATS = ("auto", "pretty", "plain", "json")


def log_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        default="auto", help="event lines: pretty on a terminal, key=value lines "
                        "otherwise, or one JSON object per line")


def push_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                 push_help: str) -> None:
    """``--push``, ``--remote`` and ``--skip-ci-marker``: how the commits the command makes
    reach the remote."""
    parser.add_argument("--push", action="store_true", help=push_help)
    parser.add_argument("--remote", default="origin", help="git remote to push to (origin)")
    parser.add_argument("--skip-ci-marker", default=SKIP_CI_MARKER, metavar="TEXT",
                        help="appended to commit subjects so CI does not run again ('' for none)")


def gitops_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("write-back to git (specs with promotion.writeBack: true)")
    group.add_argument("--no-commit", action="store_true",
                       help="edit the activeModel lines but do not commit them")
    push_options(group, push_help="push write-back commits to the current branch (rebasing if "
                 "needed)")
    group.add_argument("--push-branch", metavar="BRANCH",
                       help="push them to this branch instead, ready for a pull request")
    group.add_argument("--commit-message", metavar="TEMPLATE", help="commit subject; fields: "
                       "{flywheel} {old} {new} {trained_f1} {active_f1} {iteration} {reason} "
                       "{spec_file}")


def gitops_from(args: argparse.Namespace) -> GitOps:
    """The write-back options as a :class:`GitOps`; a bad message template is refused here."""
    from reconciler.runtime.writeback import DEFAULT_MESSAGE, GitOps, check_template

    message = args.commit_message or DEFAULT_MESSAGE
    check_template(message)
    return GitOps(commit=not args.no_commit, push=bool(args.push or args.push_branch),
                  remote=args.remote, branch=args.push_branch, message=message,
                  skip_ci=args.skip_ci_marker)


def gitops_argv(args: argparse.Namespace) -> list[str]:
    """The same write-back options, for the `flywheel reconcile` jobs the daemon starts."""
    argv = ["--remote", args.remote, "--skip-ci-marker", args.skip_ci_marker]
    if args.no_commit:
        argv.append("--no-commit")
    if args.push:
        argv.append("--push")
    if args.push_branch:
        argv += ["--push-branch", args.push_branch]
    if args.commit_message:
        argv += ["--commit-message", args.commit_message]
    return argv


def executor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where iterations compute")
    group.add_argument("--executor", metavar="URL", help="local (default: DVC runs each stage as "
                       "a process), in-process (fit and score in this process, recorded by "
                       "dvc commit) or dask://HOST:PORT (on that Dask scheduler's workers) "
                       "(env FLYWHEEL_EXECUTOR)")
    group.add_argument("--exchange", metavar="s3://BUCKET/PREFIX", help="with a cluster: pass "
                       "documents and models through this bucket instead of the tasks "
                       "(env FLYWHEEL_EXCHANGE)")


def executor_argv(args: argparse.Namespace) -> list[str]:
    """The same options, for the `flywheel reconcile` jobs the daemon starts."""
    argv = []
    if args.executor:
        argv += ["--executor", args.executor]
    if args.exchange:
        argv += ["--exchange", args.exchange]
    return argv


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 10**7:
        raise argparse.ArgumentTypeError(f"out of range: {text}")
    return value
