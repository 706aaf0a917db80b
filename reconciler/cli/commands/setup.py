"""``init``, ``install-hook``, ``publish``, ``demo``."""

from __future__ import annotations

import argparse

from rich.console import Console

from reconciler.cli.commands import repository
from reconciler.cli.exits import EXIT_OK


def init(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api

    path = args.path.resolve()
    done = api.init(path, args.remote)
    commit = f"committed {done.commit[:12]}" if done.commit else "nothing new to commit"
    err.print(f"initialised a flywheel repository in {path} ({commit})", highlight=False)
    if done.remote is None:
        err.print("no DVC remote for the models yet: `flywheel init --remote PATH_OR_URL` "
                  "sets one", highlight=False)
    err.print("next: your data under data/, a spec under specs/ (see `flywheel schema`), "
              "commit them, then `flywheel reconcile`", highlight=False)
    return EXIT_OK


def install_hook(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api

    for path in api.install_hooks(repository(args)):
        err.print(f"installed {path}")
    return EXIT_OK


def publish(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.gitops.publish import DEFAULT_MESSAGE

    done = api.publish(repository(args), dvc_push=not args.no_dvc_push,
                       dvc_remote=args.dvc_remote, push=args.push, remote=args.remote,
                       message=args.message or DEFAULT_MESSAGE, skip_ci=args.skip_ci_marker)
    err.print(f"files pushed to the DVC remote: {done.models_pushed}; commit: "
              f"{done.commit or 'none (nothing changed)'}"
              + (f"; pushed to {done.pushed_to}" if done.pushed_to else ""), highlight=False)
    return EXIT_OK


def demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.demo import run_demo

    return run_demo(args.workdir, out, err)
