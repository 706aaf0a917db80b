"""Git and CI integration: `flywheel init` (scaffold), `flywheel publish` (dvc push + commit +
push after a CI reconcile), and the git hooks that reconcile after a commit or merge."""
