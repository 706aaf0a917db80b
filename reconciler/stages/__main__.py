"""Entry point of the pipeline stages; one error line on stderr and exit 1 on failure."""

from __future__ import annotations

import importlib
import sys

from reconciler.errors import FlywheelError
from reconciler.failpoints import failpoint


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("prepare", "train", "evaluate"):
        print("usage: python -m reconciler.stages {prepare,train,evaluate} PARAMS.yaml",
              file=sys.stderr)
        return 2
    # Import only the stage asked for: prepare needs no scikit-learn (seconds of start-up).
    stage = importlib.import_module(f"reconciler.stages.{args[0]}")
    failpoint(f"stage:{args[0]}:started")
    try:
        stage.run(args[1])
    except FlywheelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    failpoint(f"stage:{args[0]}:done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
