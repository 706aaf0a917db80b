"""The README's API walkthrough, run as it stands (its port swapped for a free one) against a
real `flywheel serve` with its watch daemon: boto3 creates a flywheel and a dataset and runs an
iteration to COMPLETED, then the real aws CLI lists, pins, creates an endpoint and classifies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from api_harness import ApiServer, commits, incoming, train_rows
from conftest import PROJECT, run_cli

MARKER = "<!-- the block below is run by tests/e2e/test_http_readme.py -->"


def readme_walkthrough() -> str:
    text = (PROJECT / "README.md").read_text("utf-8")
    after = text.split(MARKER, 1)[1]
    match = re.match(r"\s*```sh\n(.*?)```", after, re.S)
    assert match, "no sh block after the marker"
    return match.group(1)


def test_the_readme_api_walkthrough_works_as_written(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    incoming(root, "packages.csv", train_rows(15))
    with ApiServer(root) as server:
        script = readme_walkthrough().replace("4599", str(server.port))
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_PAGER="")
        done = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=root,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    status, f1 = done.stdout.splitlines()[0].split()
    assert status == "COMPLETED" and 0.5 < float(f1) <= 1.0
    classified = json.loads(done.stdout[done.stdout.rindex('{\n    "Classes"'):])
    assert classified["Classes"][0]["Name"] == "database"
    history = commits(root)
    for subject in ("CreateFlywheel packages", "UpdateFlywheel packages: pin activeModel to v1",
                    "CreateEndpoint packages"):
        assert subject in history
    assert any(s.startswith("CreateDataset packages/packages-2025-01 (TRAIN, 60 documents)")
               for s in history)
