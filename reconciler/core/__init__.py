"""The pure core: specs, records, the planner, the policy, metrics, conditions, response shapes
and the repository layout. No files, processes, clock, DVC, git or watchdog (import-linter
checks it): everything here is a function of its arguments."""
