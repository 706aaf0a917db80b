"""The Comprehend-compatible HTTP API: JSON 1.1 over loopback, SigV4, the operations."""

#: The port ``flywheel serve`` listens on by default.
DEFAULT_PORT = 4599
