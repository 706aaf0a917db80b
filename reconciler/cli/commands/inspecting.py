"""``list``, ``describe``, ``iterations``, ``iteration``, ``classify``, ``plot``, ``schema``."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from reconciler.cli.commands import repository
from reconciler.cli.exits import EXIT_FAILED, EXIT_OK


def list_(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import flywheel_table, print_json
    from reconciler.core.responses import conditions_json, list_flywheels_response

    views = api.list_flywheels(repository(args))
    if args.output == "json":
        loaded = [v for v in views if v.spec_file]
        response = list_flywheels_response((v.spec_file.spec, v.observed, v.message)
                                           for v in loaded if v.spec_file)
        for summary, v in zip(response["FlywheelSummaryList"], loaded, strict=True):
            summary["Conditions"] = conditions_json(v.conditions)
        print_json(response)
    else:
        out.print(flywheel_table(views))
    for v in views:  # a spec that does not load, or records that cannot be read
        if v.spec_file is None or v.lake_error is not None:
            err.print(f"error: {v.lake_error or v.error}", markup=False, highlight=False,
                      soft_wrap=True)
    return EXIT_FAILED if any(v.error for v in views) else EXIT_OK


def describe(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.api.health import health
    from reconciler.cli.render import degradation_lines, print_json
    from reconciler.cli.text import describe_lines
    from reconciler.core.responses import conditions_json, degradation_json, flywheel_properties

    repo = repository(args)
    v = api.describe_flywheel(repo, args.name)
    assert v.spec_file is not None
    found = health(repo, v.name, v)
    if args.output == "json":
        props = flywheel_properties(v.spec_file.spec, v.observed, v.message)
        props["Conditions"] = conditions_json(v.conditions)
        if found.degradation is not None:
            props["Degradation"] = degradation_json(found.degradation, found.drops)
        print_json({"FlywheelProperties": props})
    else:
        for line in describe_lines(v):
            out.print(line, highlight=False)
        for line in degradation_lines(found):
            out.print(line, highlight=False)
    return EXIT_FAILED if v.error else EXIT_OK


def iterations(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import iterations_table, print_json
    from reconciler.core.responses import list_flywheel_iteration_history

    records = api.list_iterations(repository(args), args.name)
    if args.output == "json":
        print_json(list_flywheel_iteration_history(records))
    else:
        out.print(iterations_table(args.name, records))
    return EXIT_OK


def iteration(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import per_label_table, print_json
    from reconciler.cli.text import iteration_lines
    from reconciler.core.responses import describe_flywheel_iteration

    detail = api.describe_iteration(repository(args), args.name, args.iteration_id)
    if args.output == "json":
        answer = describe_flywheel_iteration(detail.record)
        if detail.record.drift is not None:  # the project's own member: Comprehend has none
            answer["FlywheelIterationProperties"]["DataDrift"] = detail.record.drift.model_dump(
                mode="json", by_alias=True)
        print_json(answer)
        return EXIT_OK
    for line in iteration_lines(detail):
        out.print(line, highlight=False)
    if detail.trained:
        out.print(per_label_table(detail.trained, detail.active))
    return EXIT_OK


def classify(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import classification_table, print_json
    from reconciler.core.responses import classify_response

    texts = list(args.texts)
    if args.file:
        handle = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")
        with handle:
            texts.extend(line.rstrip("\n") for line in handle if line.strip())
    version, results = api.classify(repository(args), args.name, texts, args.version,
                                    raw=args.raw_scores)
    if args.output == "json":
        print_json(classify_response(version, results))
    else:
        out.print(classification_table(version, results, args.top))
    return EXIT_OK


def plot(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api

    target = api.plot(repository(args), args.name, args.out)
    err.print(f"wrote {target}", highlight=False, soft_wrap=True)
    return EXIT_OK


def schema(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.cli.render import print_json
    from reconciler.core.spec import json_schema

    print_json(json_schema())
    return EXIT_OK
