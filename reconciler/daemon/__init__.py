"""``flywheel watch``: the reconcile loop as a long-running daemon.

- :mod:`.triggers`  which file events matter, and the debounced wake-up they feed
- :mod:`.workers`   one child process per flywheel job, running the one ``reconcile()``
- :mod:`.watching`  the folders watchdog watches, and its warnings as log lines
- :mod:`.dispatch`  the pure rules: start a job for a flywheel now, or wait (and why, how long)
- :mod:`.status`    the status file that says what the daemon is doing now
- :mod:`.loop`      the daemon itself: passes, jobs, resync, shutdown
"""
