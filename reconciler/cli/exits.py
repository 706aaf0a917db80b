"""The exit codes of ``flywheel``, one contract for every command and for scripts.

0 success; 1 one or more flywheels (or spec files) failed, the others were handled; 2 the command
itself could not run (usage, not a repository, unknown flywheel, a daemon already serving the
repository); 3 ``status``: no daemon is running; 130 a stop was asked for (SIGTERM, Ctrl-C) and
work was set aside for the next reconcile.
"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_STOPPED = 0, 1, 2, 3, 130
