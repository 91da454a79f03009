"""The worker's stall watch: a partition with records waiting and no progress is fetched again."""

from __future__ import annotations

from marsad.stream import StallDetector


def test_stalled_only_when_records_wait_and_the_offset_stands_still():
    watch = StallDetector(ticks=3)
    # Records waiting (end 7 after committed 6), offset unchanged: stalled on the third repeat.
    assert [watch.observe("raw", 6, 7) for _ in range(4)] == [False, False, False, True]
    # Caught up: never stalled, however long it stays idle.
    assert not any(watch.observe("unique", 3, 3) for _ in range(10))


def test_progress_or_reset_restarts_the_count():
    watch = StallDetector(ticks=2)
    assert [watch.observe("raw", 6, 9), watch.observe("raw", 6, 9)] == [False, False]
    assert not watch.observe("raw", 7, 9)  # it moved: a busy worker, not a stalled one
    assert not watch.observe("raw", 7, 9)
    assert watch.observe("raw", 7, 9)
    watch.reset()
    assert not watch.observe("raw", 7, 9)
    watch.keep(["unique"])
    assert not watch.observe("raw", 7, 9) and not watch.observe("raw", 7, 9)


def test_a_busy_worker_is_never_stalled():
    # Saturated, its commits trail the records it handles for tens of seconds: fetching again
    # then would only add to its load.
    watch = StallDetector(ticks=2)
    assert not any(watch.observe("raw", 6, 900, busy=True) for _ in range(10))
    # Idle again, with the offset still where it was: two idle ticks make a stall.
    assert [watch.observe("raw", 6, 900) for _ in range(2)] == [False, True]
