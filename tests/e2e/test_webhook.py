"""The alarm's webhook over real HTTP on loopback: retries, time-outs, refusals, and the
background delivery that never holds up its caller."""

from __future__ import annotations

import socket
import time

from webhook_server import Receiver

from reconciler.adapters.webhook import post_json
from reconciler.core.spec import Webhook
from reconciler.runtime.alerts import Announcer


def no_sleep(_seconds: float) -> None:
    return None


def test_a_post_carries_the_json_body() -> None:
    with Receiver() as hook:
        delivery = post_json(hook.url, {"event": "flywheel.degraded", "f1": 0.81}, timeout=5,
                             retries=0)
    assert delivery.ok and delivery.attempts == 1 and delivery.status == 200
    assert hook.bodies == [{"event": "flywheel.degraded", "f1": 0.81}]
    assert hook.headers[0]["Content-Type"] == "application/json"


def test_a_server_error_is_retried_until_it_answers() -> None:
    with Receiver(answers=[500, 503, 200]) as hook:
        delivery = post_json(hook.url, {"n": 1}, timeout=5, retries=3, sleep=no_sleep)
    assert delivery.ok and delivery.attempts == 3 and hook.calls == 3


def test_a_refusal_is_not_retried() -> None:
    with Receiver(answers=[404]) as hook:
        delivery = post_json(hook.url, {"n": 1}, timeout=5, retries=3, sleep=no_sleep)
    assert not delivery.ok and delivery.attempts == 1 and delivery.status == 404
    assert hook.calls == 1 and delivery.error == "HTTP 404 Not Found"


def test_a_slow_receiver_times_out_each_attempt() -> None:
    with Receiver(delay=2.0) as hook:
        started = time.monotonic()
        delivery = post_json(hook.url, {"n": 1}, timeout=0.3, retries=1, sleep=no_sleep)
        took = time.monotonic() - started
    assert not delivery.ok and delivery.attempts == 2
    assert took < 1.5, took  # two attempts of 0.3 s, not two of the receiver's 2 s
    assert delivery.error is not None and "timed out" in delivery.error.lower()


def test_nobody_listening_is_an_error_after_the_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delivery = post_json(f"http://127.0.0.1:{port}/hook", {"n": 1}, timeout=1, retries=2,
                         sleep=no_sleep)
    assert not delivery.ok and delivery.attempts == 3 and delivery.status is None
    assert delivery.error is not None and "refused" in delivery.error.lower()


def test_the_announcer_returns_at_once_and_delivers_in_the_background() -> None:
    with Receiver(delay=0.5) as hook:
        seen = []
        announcer = Announcer(log=seen.append)
        started = time.monotonic()
        announcer.announce(Webhook(url=hook.url, timeout_seconds=5, retries=0), {"n": 1})
        assert time.monotonic() - started < 0.2  # the caller does not wait for the receiver
        announcer.wait()
    assert [d.ok for d in seen] == [True] and hook.bodies == [{"n": 1}]
