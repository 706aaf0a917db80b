"""`flywheel install-hook`: reconcile after a commit or a merge that touched specs/ or data/.

The hook starts the reconcile in the background and returns at once, so a commit never waits
for training; its output goes to ``.flywheel/logs/hook.log``. Existing hooks are kept: our lines
live between two marker comments, which a re-install replaces and nothing else touches. Commits
the reconciler makes itself (write-backs, ``flywheel publish``) set ``FLYWHEEL_RECONCILING`` so
the hook does not start another reconcile for them.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

from reconciler.adapters import git
from reconciler.adapters.files import atomic_write_text
from reconciler.core.layout import DESIRED_STATE_DIRS, HOOK_LOG, LOGS_DIR

_WATCHED = " ".join(DESIRED_STATE_DIRS)
HOOKS = {
    "post-commit": f"git diff-tree -r --name-only --no-commit-id HEAD -- {_WATCHED}",
    "post-merge": f"git diff --name-only ORIG_HEAD HEAD -- {_WATCHED}",
}
BEGIN = "# >>> flywheel-reconciler >>>"
END = "# <<< flywheel-reconciler <<<"
SKIP_VARIABLE = git.OWN_COMMIT_VARIABLE


def block(command: str, changed: str) -> str:
    return f"""{BEGIN}
# Reconcile in the background when this commit or merge touched specs/ or data/.
# Installed by `flywheel install-hook`; delete these lines to remove it.
if [ -z "${SKIP_VARIABLE}" ] && [ -n "$({changed} 2>/dev/null)" ]; then
  top=$(git rev-parse --show-toplevel)
  mkdir -p "$top/{LOGS_DIR}"
  nohup {command} -C "$top" reconcile --log-format plain \\
    >> "$top/{HOOK_LOG}" 2>&1 < /dev/null &
fi
{END}
"""


def install_hooks(root: Path) -> list[Path]:
    """Install (or refresh) the hooks; returns the files written."""
    hooks_dir = Path(git.run(root, "rev-parse", "--git-path", "hooks").strip())
    if not hooks_dir.is_absolute():
        hooks_dir = root / hooks_dir
    command = f"{shlex.quote(sys.executable)} -m reconciler.cli"
    written = []
    for name, changed in HOOKS.items():
        path = hooks_dir / name
        current = path.read_text("utf-8") if path.exists() else "#!/bin/sh\n"
        atomic_write_text(path, _with_block(current, block(command, changed)))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written


def _with_block(script: str, ours: str) -> str:
    """``script`` with our block replaced, or inserted right after its first line.

    At the top, because a hook that ends in ``exit`` would never reach lines appended after it;
    our block only starts a background job, so whatever follows runs as before.
    """
    start, end = script.find(BEGIN), script.find(END)
    if start != -1 and end > start:
        return script[:start] + ours + script[end + len(END):].lstrip("\n")
    if not script.startswith("#!"):
        return "#!/bin/sh\n" + ours + script
    first, _, rest = script.partition("\n")
    return f"{first}\n{ours}{rest}"
