"""``flywheel watch``: the reconcile loop as a long-running daemon.

- :mod:`.triggers`  which file events matter, and the debounced wake-up they feed
- :mod:`.workers`   one child process per flywheel job, running the one ``reconcile()``
- :mod:`.status`    the status file that says what the daemon is doing now
- :mod:`.loop`      the daemon itself: passes, dispatch, resync, shutdown
"""
