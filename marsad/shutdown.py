"""SIGINT and SIGTERM for `marsad run` and `marsad process`, also while they start, before the
faust worker handles them itself.

A supervisor may stop the service while it still loads its libraries and models, and so may
Ctrl-C. The handler raises SystemExit, so a long start-up step stops at once and everything
already started (the embedded broker, broker.url) is cleaned up on the way out: status 0 for the
service, which is stopped that way, 128 + the signal for a batch cut short. It also remembers
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
_clean = True


def install(clean: bool) -> None:
    """``clean``: a stop is how this command ends (exit 0), not an interruption."""
    global _clean
    _clean = clean
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)


def _stop(signum: int, _frame: object) -> None:
    if _requested is None:
        log.warning("marsad stopped while starting")
    note(signum)
    if _raising:
        # The Kafka client being unwound (topic set-up) reports its cut-off task as an error.
        logs.quiet_clients()
        _exit()


def _exit() -> None:
    assert _requested is not None
    raise SystemExit(0 if _clean else 128 + _requested)


def note(signum: int) -> None:
    """A stop signal came (the worker's own handlers report theirs here too)."""
    global _requested
    _requested = signum


def requested() -> int | None:
    return _requested


def hand_over() -> None:
    """Just before the worker starts: stop here if a signal came and its SystemExit was swallowed
    on the way; from now on a signal is only remembered, for :func:`resend`."""
    global _raising
    if _requested is not None:
        _exit()
    _raising = False


def resend() -> None:
    """Once the worker's own handlers are in place: deliver again a signal that start-up ignored."""
    if _requested is not None:
        os.kill(os.getpid(), _requested)
