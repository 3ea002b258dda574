"""What a stop signal means after the ones before it, decided on a fake clock."""

from __future__ import annotations

from reanalyzer.run.signals import OnSignal, StopSignals


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_signal_within_a_moment_of_the_first_is_the_same_request() -> None:
    """GNU timeout's second copy (to the process group) does not turn a clean stop into an
    exit at once: only a signal a while after the first one does."""
    clock = FakeTime()
    signals = StopSignals(now=clock, window=1.0)
    assert signals.received() is OnSignal.STOP
    clock.t += 0.01
    assert signals.received() is OnSignal.SAME
    clock.t += 0.9
    assert signals.received() is OnSignal.SAME
    clock.t += 0.2  # 1.11 s after the first
    assert signals.received() is OnSignal.NOW
    assert signals.received() is OnSignal.NOW
