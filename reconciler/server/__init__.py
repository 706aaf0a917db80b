"""The Comprehend-compatible HTTP API (JSON 1.1, SigV4, the operations) and its web console."""

import ipaddress

#: The port ``flywheel serve`` listens on by default.
DEFAULT_PORT = 4599


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
