"""The retry policy's delays and the parsing of Retry-After, without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.send.backoff import RetryPolicy, parse_retry_after

NOW = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=0.999999))
def test_backoff_stays_within_zero_and_the_capped_ceiling(n: int, r: float) -> None:
    """Full jitter: every delay is in [0, min(cap, base * 2**(n-1))]."""
    policy = RetryPolicy(base=0.5, cap=30.0)
    delay = policy.backoff(n, lambda: r)
    assert 0.0 <= delay <= min(30.0, 0.5 * 2 ** min(n - 1, 100))
    assert delay <= 30.0


def test_backoff_ceiling_doubles_then_caps() -> None:
    """The ceiling doubles per retry until the cap."""
    policy = RetryPolicy(base=1.0, cap=10.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.backoff(3, lambda: 0.5) == 2.0


def test_retry_after_wins_over_backoff_up_to_its_cap() -> None:
    """A Retry-After is used as given, but never longer than retry_after_cap."""
    policy = RetryPolicy(retry_after_cap=60.0)
    assert policy.delay(1, 7.0, lambda: 0.0) == 7.0
    assert policy.delay(1, 3600.0) == 60.0
    assert policy.delay(2, None, lambda: 1.0) == policy.ceiling(2)


def test_exhausted_after_max_retries() -> None:
    """max_retries retries are allowed, not one more."""
    policy = RetryPolicy(max_retries=2)
    assert not policy.exhausted(0)
    assert not policy.exhausted(1)
    assert policy.exhausted(2)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Sat, 09 May 2026 12:00:30 GMT", 30.0),
        ("Sat, 09 May 2026 11:59:00 GMT", 0.0),  # in the past: go now
        ("Saturday, 09-May-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form too
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_delta_seconds_and_http_date(header: str | None, seconds: float | None) -> None:
    """Retry-After is read as delta seconds or an HTTP date against an injected now."""
    assert parse_retry_after(header, lambda: NOW) == seconds
