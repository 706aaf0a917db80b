"""Serving the API: the server's settings checked, then uvicorn on one address.

Loopback by default. A ``host`` that other machines can reach is refused unless credentials are
configured, so nothing is ever served unauthenticated beyond this machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.api.declaring import SourcePolicy
from reconciler.api.repository import Repository
from reconciler.errors import FlywheelError
from reconciler.server import DEFAULT_PORT, is_loopback
from reconciler.server.app import Log, create_app
from reconciler.server.context import Context
from reconciler.server.sigv4 import Verifier, load_credentials


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    credentials_file: Path | None = None
    #: Folders CreateDataset may read local files from (relative to the repository).
    local_folders: tuple[Path, ...] | None = None
    max_skew: float = 300.0


def build(repo: Repository, options: ServeOptions, log: Log) -> tuple[Any, Verifier | None]:
    """The application and its verifier (None: requests are not authenticated)."""
    verifier = None
    if options.credentials_file is not None:
        keys = load_credentials(options.credentials_file)
        verifier = Verifier(keys, max_skew=options.max_skew)
    elif not is_loopback(options.host):
        raise FlywheelError(f"--host {options.host} is reachable from other machines: give "
                            "--credentials-file FILE so that every request must be signed")
    sources = SourcePolicy.of(repo.root, options.local_folders)
    return create_app(Context(repo, sources), verifier=verifier, log=log), verifier


def check_port(host: str, port: int) -> None:
    """A clear error now rather than uvicorn's log line once it fails to bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise FlywheelError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def serve(repo: Repository, options: ServeOptions, log: Log,
          on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handling: in-flight requests finish).

    Once listening, the endpoints' models are loaded in a background thread."""
    import uvicorn

    app, _ = build(repo, options, log)
    ctx: Context = app.state.context

    def ready() -> None:
        threading.Thread(target=_warm, args=(ctx, log), name="warm-up", daemon=True).start()
        if on_ready is not None:
            on_ready()

    check_port(options.host, options.port)
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                            access_log=False, lifespan="off", server_header=False)
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        ready()

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def _warm(ctx: Context, log: Log) -> None:
    from reconciler.server.operations.endpoints import warm_up

    started = time.perf_counter()
    try:
        warmed = warm_up(ctx)
    except Exception as exc:  # a warm-up never takes the server down: the calls will say why
        log({"event": "warm-up.failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    if warmed:
        log({"event": "warm-up", "endpoints": ",".join(warmed),
             "seconds": round(time.perf_counter() - started, 2)})
