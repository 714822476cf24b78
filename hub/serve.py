"""One hub process: `switchboard hub` (and `switchboard run`, which starts one) serves the app
with uvicorn and stops gracefully on SIGTERM or Ctrl-C.

On the signal it stops accepting connections, gives the requests in flight (streams too) up to
`shutdown_grace_s` to finish, then runs the app's shutdown, which stops the background work
and writes what the batch writers still hold, and exits 0.
"""

import signal

import uvicorn

from hub.core.config import Settings, get_settings

__all__ = ["KEEP_ALIVE_S", "serve_hub"]

# Longer than a proxy in front keeps an idle connection to a replica (hub/deploy's nginx: 60 s;
# ingress-nginx and cloud load balancers: 60 s by default), so the proxy, not the hub, closes
# idle connections. With uvicorn's 5 s, a proxy could send a request on a connection the hub was
# closing, and nginx answers that with a 502 it never retries for a POST.
KEEP_ALIVE_S = 75

# uvicorn's exit code for an app that could not start (its own `uvicorn.run` uses it too).
_STARTUP_FAILURE = 3


def serve_hub(settings: Settings) -> int:
    """Serve the hub on the settings' host and port until a signal; the process's exit code."""
    config = uvicorn.Config(
        "hub.main:create_app",
        factory=True,
        host=settings.hub_host,
        port=settings.hub_port,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    server = uvicorn.Server(config)
    # Once it has stopped, uvicorn raises the signal it stopped on again, for the handler it
    # found; the default one would end the process as killed by SIGTERM after a clean stop.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    server.run()
    return 0 if server.started else _STARTUP_FAILURE


if __name__ == "__main__":
    raise SystemExit(serve_hub(get_settings()))
