"""Health on a fake clock: outage and unreachable, 429 pauses, the learned 413, batch slicing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.send.backoff import RetryPolicy
from reanalyzer.send.config import SendConfig
from reanalyzer.send.health import AfterFailure, Health, Next, Pause, chunked, halves

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def health(clock: Any, **overrides: Any) -> Health:
    """A Health with a fixed jitter (half the ceiling) and a fixed wall clock."""
    fields: dict[str, Any] = {
        "clock": clock,
        "policy": RetryPolicy(max_retries=2, base=1.0, cap=8.0),
        "appliance": "https://a1000.example",
        "unreachable_after": 3,
        "window": 60.0,
        "window_at_start": 15.0,
        "max_throttled": 2,
        "max_batch": {"reanalyze": None, "status": None},
        "rand": lambda: 0.5,
        "wall_now": lambda: NOW,
    }
    fields.update(overrides)
    return Health(**fields)


def test_a_lone_failure_is_retried_with_backoff_until_the_request_is_out_of_retries(
    clock: Any,
) -> None:
    """Below the outage streak, retry n waits half of min(cap, base * 2**(n-1)); then give up."""
    h = health(clock, unreachable_after=10)
    assert h.failed("HTTP 503", retries=0) == AfterFailure(Next.RETRY, 0.5)
    assert h.failed("HTTP 503", retries=1) == AfterFailure(Next.RETRY, 1.0)
    assert h.failed("HTTP 503", retries=2) == AfterFailure(Next.GIVE_UP)


def test_an_outage_spends_no_retries_and_its_retry_lands_when_the_window_ends(
    clock: Any,
) -> None:
    """From the streak's threshold on, failures are an outage: they never give up, and their
    back-off is cut so that the last retry goes out as the window ends."""
    h = health(clock, unreachable_after=2, policy=RetryPolicy(0, base=100.0, cap=100.0))
    assert h.failed("refused", retries=0).next is Next.GIVE_UP  # out of retries, no outage yet
    clock.time += 10.0
    after = h.failed("refused", retries=0)
    assert after.next is Next.RETRY
    assert after.outage
    assert after.delay == 15.0 - 10.0 + 0.01  # not the back-off's 50 s


def test_no_usable_answer_for_the_window_means_unreachable(clock: Any) -> None:
    """An appliance silent for the window (15 s before it ever answered) is unreachable, named
    with the streak and the last failure."""
    h = health(clock, unreachable_after=1)
    clock.time += 14.5
    assert h.failed("refused", retries=0).next is Next.RETRY
    clock.time += 0.5
    after = h.failed("cannot connect to 127.0.0.1:9", retries=0)
    assert after.next is Next.UNREACHABLE
    assert after.reason == (
        "the appliance at https://a1000.example gave no usable answer for 15 s "
        "(2 failures in a row, last: cannot connect to 127.0.0.1:9)"
    )


def test_once_it_has_answered_the_appliance_gets_the_full_window(clock: Any) -> None:
    """After a usable answer, the window is the long one, counted from that answer."""
    h = health(clock, unreachable_after=1)
    assert h.outage_window() == 15.0
    clock.time += 100.0
    h.answered()
    assert h.outage_window() == 60.0
    clock.time += 59.0
    assert h.failed("timed out", retries=0).next is Next.RETRY
    clock.time += 1.0
    assert h.failed("timed out", retries=0).next is Next.UNREACHABLE


def test_an_answer_ends_the_streak_and_start_restarts_the_silence(clock: Any) -> None:
    """A usable answer resets the streak; `start` counts the silence from the job's start, not
    from when the Health was made."""
    h = health(clock)
    h.failed("HTTP 502", retries=0)
    h.failed("HTTP 502", retries=0)
    h.answered()
    assert h.streak == 0
    assert not h.failed("HTTP 502", retries=0).outage  # the streak starts over
    late = health(clock, unreachable_after=1)
    clock.time += 30.0
    late.start()
    assert late.failed("refused", retries=0).next is Next.RETRY


def test_a_429_neither_ends_nor_extends_the_outage_streak(clock: Any) -> None:
    """A 429 is an answer about pace, not health: the streak of failures goes on through it."""
    h = health(clock)
    h.failed("HTTP 503", retries=0)
    h.failed("HTTP 503", retries=0)
    h.throttled(None, throttles=1)
    assert h.streak == 2
    assert h.failed("HTTP 503", retries=0).outage


def test_429_pauses_for_retry_after_in_seconds_or_as_a_date(clock: Any) -> None:
    """Retry-After is honoured as seconds or an HTTP date (read on the wall clock)."""
    h = health(clock)
    assert h.throttled("7", throttles=1) == Pause(7.0, 7.0)
    date = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert h.throttled(date, throttles=1) == Pause(30.0, 30.0)


def test_429s_in_a_row_back_off_longer_until_an_answer_and_too_many_give_up(
    clock: Any,
) -> None:
    """Without Retry-After the pause grows with the 429s in a row across requests, an answer
    resets it, and a request drawing more than `max_throttled` gives up."""
    h = health(clock)
    assert [h.throttled(None, throttles=1) for _ in range(3)] == [
        Pause(0.5, None), Pause(1.0, None), Pause(2.0, None)]
    h.answered()
    assert h.throttled(None, throttles=2) == Pause(0.5, None)
    assert h.throttled(None, throttles=3) is None


def test_a_whole_request_refusal_is_split_in_halves_and_learns_nothing(clock: Any) -> None:
    """A 400/405 for the whole request halves it; later requests are not made smaller."""
    h = health(clock)
    split = h.split("reanalyze", list("abcde"), too_large=False)
    assert split.parts == [list("abc"), list("de")]
    assert split.learned is None
    assert h.parts("reanalyze", list("abcdefgh")) == [list("abcdefgh")]


def test_a_413_lowers_the_largest_batch_of_its_kind_for_the_rest_of_the_job(
    clock: Any,
) -> None:
    """A 413 on 10 hashes learns 5 for that kind only; later sends are sliced to it, and a 413
    on a batch already small enough learns nothing new."""
    h = health(clock)
    split = h.split("reanalyze", list("abcdefghij"), too_large=True)
    assert split.parts == [list("abcde"), list("fghij")]
    assert split.learned == 5
    assert h.largest("reanalyze") == 5
    assert h.largest("status") is None
    assert h.parts("reanalyze", list("abcdefghijkl")) == [list("abcde"), list("fghij"),
                                                          list("kl")]
    again = h.split("reanalyze", list("abcdefghij"), too_large=True)
    assert again.learned is None
    assert again.parts == [list("abcde"), list("fghij")]
    assert h.split("reanalyze", list("abcd"), too_large=True).learned == 2


def test_after_a_413_the_largest_batch_taken_is_found_by_the_jobs_own_requests(
    clock: Any,
) -> None:
    """An appliance that takes 64: from 100 the search halves, then probes upward halfway to the
    smallest refused, one request at a time, and keeps 64 once 65 is refused; every refused
    batch is sent in parts, and batches are then cut at 64."""
    h = health(clock)
    limit, sizes, refusals = 64, [], 0
    hashes = [f"{i:040x}" for i in range(100)]
    for _ in range(40):  # batches from the front, cut at the size the search says
        batch = hashes[: h.batch_to_cut("reanalyze") or 100]
        queue = h.parts("reanalyze", batch)
        sent: list[str] = []
        while queue:
            part = queue.pop(0)
            if len(part) > limit:
                refusals += 1
                queue[:0] = h.split("reanalyze", part, too_large=True).parts
                continue
            sizes.append(len(part))
            sent += part
            h.answered_batch("reanalyze", len(part))
        assert sorted(sent) == batch  # no hash lost or sent twice
    assert h.learned("reanalyze") == 64
    assert h.largest("reanalyze") == 64
    assert refusals <= 5
    assert sizes[-10:] == [64] * 10
    assert h.batch_to_cut("reanalyze") == 64


def test_a_probe_goes_one_request_at_a_time(clock: Any) -> None:
    """While a larger batch is being tried, other requests keep to the largest answered."""
    h = health(clock)
    h.split("reanalyze", list("abcdefghij"), too_large=True)  # 10 refused: 5
    assert h.answered_batch("reanalyze", 5) == 7  # probe halfway to 10
    assert h.batch_to_cut("reanalyze") == 9
    assert [len(p) for p in h.parts("reanalyze", list("abcdefghi"))] == [7, 2]
    assert [len(p) for p in h.parts("reanalyze", list("abcdefghi"))] == [5, 4]
    assert h.answered_batch("reanalyze", 7) == 8
    assert [len(p) for p in h.parts("reanalyze", list("abcdefghi"))] == [8, 1]


def test_answers_before_any_413_change_nothing(clock: Any) -> None:
    """Without a 413 there is nothing to search: answers leave the batch as given."""
    h = health(clock)
    assert h.answered_batch("reanalyze", 100) is None
    assert h.largest("reanalyze") is None
    assert h.learned("reanalyze") is None


def test_of_a_config_takes_its_windows_and_one_hash_per_single_request(clock: Any) -> None:
    """Built from a SendConfig: its outage settings, and batches of one on the single endpoint."""
    config = SendConfig(url="https://a.example/", token="t", endpoint="single",
                        unreachable_after=4, unreachable_window=90.0, max_throttled=7)
    h = Health.of(config, clock, 100, rand=lambda: 0.5, wall_now=lambda: NOW)
    assert (h.appliance, h.unreachable_after, h.window, h.max_throttled) == (
        "https://a.example", 4, 90.0, 7)
    assert h.max_batch == {"reanalyze": 1, "status": 100}
    assert h.parts("reanalyze", list("abc")) == [["a"], ["b"], ["c"]]


hash_lists = st.lists(st.text("0123456789abcdef", min_size=40, max_size=40), unique=True)


@given(hash_lists, st.integers(min_value=1, max_value=50))
def test_chunking_never_loses_or_invents_a_hash(hashes: list[str], size: int) -> None:
    """Chunks are at most `size` and together exactly the input, in order."""
    parts = chunked(hashes, size)
    assert all(0 < len(p) <= size for p in parts)
    assert [h for p in parts for h in p] == hashes


@given(hash_lists.filter(lambda hs: len(hs) >= 2))
def test_halving_never_loses_a_hash(hashes: list[str]) -> None:
    """Two non-empty halves that together are the request."""
    first, second = halves(hashes)
    assert first
    assert second
    assert [*first, *second] == hashes


def test_a_silent_appliance_is_overdue_after_its_window_whatever_the_read_timeout(
    clock: Any,
) -> None:
    """With requests in flight and no answer of any kind, the job stops once the outage window
    has passed: 15 s while the appliance never answered, the window (60 s) once it has; any
    answer, even a 503, and a new spell of requests in flight, count the silence again."""
    h = health(clock)
    h.start()
    start = clock.time
    clock.time += 14.9
    assert h.overdue(waiting_since=start) is None
    clock.time += 0.2
    reason = h.overdue(waiting_since=start)
    assert reason is not None
    assert "has not answered for 15 s" in reason
    h.answered()  # mid-job: the whole window
    clock.time += 30
    h.heard()  # a 503 is an answer too
    clock.time += 59
    assert h.overdue(waiting_since=start) is None
    assert h.overdue(waiting_since=clock.time - 1) is None  # in flight only for a second
    clock.time += 1.5
    assert h.overdue(waiting_since=start) is not None


def test_a_name_that_does_not_resolve_is_a_wrong_url_only_before_any_answer(clock: Any) -> None:
    """Before the appliance ever answered, a DNS failure is a misspelt --url, said at once;
    after, a resolver's moment, left to be retried (None)."""
    h = health(clock)
    said = h.name_unresolved("the host name a1000.exmaple does not resolve")
    assert said is not None
    assert "--url" in said
    h.answered()
    assert h.name_unresolved("the host name a1000.example does not resolve") is None
