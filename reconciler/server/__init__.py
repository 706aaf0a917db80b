"""The Comprehend-compatible HTTP API: JSON 1.1 over loopback, SigV4, the operations."""
