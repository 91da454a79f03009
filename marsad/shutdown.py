"""SIGINT and SIGTERM while `marsad run` starts, before the faust worker handles them itself.

A supervisor may stop the service while it still loads its libraries and models, and so may
Ctrl-C. The handler raises SystemExit(0), so a long start-up step stops at once and everything
already started (the embedded broker, broker.url) is cleaned up on the way out. It also remembers
the signal: a library can swallow that exception (kafka-python's I/O loop logs and drops whatever
one of its tasks raises, and marsad quiets that logger), and a start-up that went on regardless is
stopped as soon as the worker can handle the signal itself (:func:`resend`).

Once the worker is about to start (:func:`hand_over`) the handler only remembers: an exception
raised inside the worker's own start-up (creating its event loop, its first coroutine) would leave
it half-built, and the worker installs its handlers a moment later anyway.
"""

from __future__ import annotations

import logging
import os
import signal

from marsad import logs

log = logging.getLogger("marsad")

_requested: int | None = None
_raising = True


def install() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)


def _stop(signum: int, _frame: object) -> None:
    global _requested
    if _requested is None:
        log.warning("marsad stopped while starting")
    _requested = signum
    if _raising:
        # The Kafka client being unwound (topic set-up) reports its cut-off task as an error.
        logs.quiet_clients()
        raise SystemExit(0)


def hand_over() -> None:
    """Just before the worker starts: stop here if a signal came and its SystemExit was swallowed
    on the way; from now on a signal is only remembered, for :func:`resend`."""
    global _raising
    if _requested is not None:
        raise SystemExit(0)
    _raising = False


def resend() -> None:
    """Once the worker's own handlers are in place: deliver again a signal that start-up ignored."""
    if _requested is not None:
        os.kill(os.getpid(), _requested)
