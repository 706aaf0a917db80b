"""The engine: one reconcile (plan, then act under the flywheel lock), an iteration through an
executor, recovery, promotion and write-back; the read side (views, classify); events and log
lines. Built on the adapters and the core; the faces reach it through reconciler.api."""
