"""Serve the tests' ScriptedUpstream in a process of its own, for benchmarks.

`python -m bench.scripted_upstream --delay-ms 50` prints the upstream's base URL (".../v1") on
its first line of output, then serves until SIGTERM or SIGINT.
"""

import argparse
import gc
import signal

from tests.support.upstream import ScriptedUpstream

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="wait before each answer")
    parser.add_argument("--reply", default="Hello from the scripted upstream.")
    parser.add_argument(
        "--fail-ratio", type=float, default=0.0, help="share of requests answered with 503"
    )
    args = parser.parse_args()
    stop = {signal.SIGTERM, signal.SIGINT}
    # Blocked before the server thread starts, so that thread inherits the mask and only
    # sigwait() below sees the signals.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    with ScriptedUpstream(remember_requests=False) as upstream:
        upstream.script(
            reply=args.reply,
            delay_s=args.delay_ms / 1000,
            fail_ratio=args.fail_ratio,
            stream_in_one_piece=True,
        )
        # What start-up made lives as long as the process: out of the garbage collector's
        # sight, its full collections stay short (as the hub's do).
        gc.collect()
        gc.freeze()
        print(upstream.url, flush=True)
        signal.sigwait(stop)


if __name__ == "__main__":
    main()
