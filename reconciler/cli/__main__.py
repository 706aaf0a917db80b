"""``python -m reconciler.cli``: what the git hooks and the watch daemon's workers run."""

import sys

from reconciler.cli.main import main

sys.exit(main())
