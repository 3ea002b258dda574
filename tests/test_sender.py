"""The sender against an appliance in process (tests/fake_appliance.py), on a fake clock:
answers, splitting, retries, outages, stops, pacing. What goes on the wire is test_client.py's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
import structlog.testing
from fake_appliance import (
    QUEUED,
    TOKEN,
    FakeAppliance,
    Request,
    World,
    hashes,
    html,
    json_reply,
    make_config,
    refused,
    result,
    sequence,
)

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.errors import (
    CredentialsError,
    NotAllowedError,
    SendingStopped,
    UnreachableError,
)
from reanalyzer.send import calls
from reanalyzer.send.answers import Decision
from reanalyzer.send.client import Reply
from reanalyzer.send.pacing import AdaptiveGate
from reanalyzer.send.sender import Sender

SHA1 = HashType.SHA1


async def test_bulk_reads_queued_then_already_queued(clock: Any) -> None:
    """201 then 200 become queued then already_queued, each hash with its detail, in one request
    naming the batch."""
    hs = hashes(3)
    appliance = FakeAppliance(World(hs))
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        first = await sender.send(SHA1, hs)
        second = await sender.send(SHA1, hs)
    assert {v.status for v in first.values()} == {Status.QUEUED}
    assert {v.status for v in second.values()} == {Status.ALREADY_QUEUED}
    assert all(v.attempts == 1 for v in first.values())
    assert appliance.seen[0] == Request("reanalyze", SHA1, hs)
    assert first[hs[0]].detail["sha1"] == hs[0].upper()


async def test_partial_absent_and_extracted_items(clock: Any) -> None:
    """Per item: partial keeps all analyses; absent (omitted or 404) is not_found; 405 item is
    not_allowed."""
    hs = hashes(5)
    world = World(hs[:3], extracted=[hs[2]])

    def handle(seen: Request) -> Reply:
        response = world(seen)
        if seen.hashes == hs[:1]:
            partial = [
                QUEUED[1],
                {"name": "cloud", "code": 405, "message": "Not connected to Spectra Intelligence."},
            ]
            return json_reply({"results": [result(hs[0], partial, 201)]})
        return response

    appliance = FakeAppliance(handle)
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        partial = await sender.send(SHA1, hs[:1])
        rest = await sender.send(SHA1, hs[1:])
    assert partial[hs[0]].status is Status.PARTIAL
    assert [a.code for a in partial[hs[0]].analyses] == [201, 405]
    assert rest[hs[1]].status is Status.QUEUED
    assert rest[hs[2]].status is Status.NOT_ALLOWED
    assert rest[hs[3]].status is Status.NOT_FOUND
    world.report_absent = True
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        reported = await sender.send(SHA1, hs[3:])
    assert {v.status for v in reported.values()} == {Status.NOT_FOUND}
    assert reported[hs[3]].http_status == 404


@pytest.mark.parametrize(
    ("world_kwargs", "status"),
    [({"extracted_whole_request": True}, Status.NOT_ALLOWED), ({}, Status.INVALID)],
)
async def test_whole_request_refusal_is_split_until_the_culprit_is_alone(
    clock: Any, world_kwargs: dict[str, Any], status: Status
) -> None:
    """A whole-request 405 (extracted) or 400 is split in halves; the culprit alone gets its
    outcome and every other hash is queued."""
    hs = hashes(8)
    culprit = hs[5]
    if status is Status.INVALID:
        world = World(hs, invalid=[culprit])
    else:
        world = World(hs, extracted=[culprit], **world_kwargs)
    async with Sender(make_config(), client=FakeAppliance(world), clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert list(verdicts) == hs or set(verdicts) == set(hs)
    assert verdicts[culprit].status is status
    assert verdicts[culprit].attempts == 4  # 8 → 4 → 2 → 1
    assert all(verdicts[h].status is Status.QUEUED for h in hs if h != culprit)
    assert stats.splits == 3


async def test_413_shrinks_the_batch_for_the_rest_of_the_job(clock: Any) -> None:
    """413 splits until the appliance accepts (2), the next requests probe upward to the largest
    it takes (3, 4 refused), and later sends go at that size."""
    hs = hashes(40)
    appliance = FakeAppliance(World(hs, max_bulk=3))
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs[:10])
        assert sender.stats.max_batch == 3  # 2 answered: 3 is tried next
        for start in (10, 20):
            verdicts |= await sender.send(SHA1, hs[start : start + 10])
        assert sender.health.learned("reanalyze") == 3
        before = len(appliance.seen)
        verdicts |= await sender.send(SHA1, hs[30:39])
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    assert len(verdicts) == 39
    assert [len(s.hashes) for s in appliance.seen[before:]] == [3, 3, 3]


@pytest.mark.parametrize("status", [401, 403])
async def test_credentials_refused_stops_at_once(clock: Any, status: int) -> None:
    """401/403 raise CredentialsError, without the token in the message; later sends raise too."""
    appliance = FakeAppliance(lambda seen: json_reply({"detail": "Invalid token."}, status))
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        with pytest.raises(CredentialsError) as caught:
            await sender.send(SHA1, hashes(4))
        with pytest.raises(CredentialsError):
            await sender.send(SHA1, hashes(4, 10))
    assert TOKEN not in str(caught.value)
    assert len(appliance.seen) == 1


async def test_appliance_type_405_stops_the_job(clock: Any) -> None:
    """The 405 for the appliance type raises NotAllowedError instead of splitting."""
    appliance = FakeAppliance(
        lambda seen: json_reply({"code": 405, "message": "Not allowed for this type of appliance."},
                                405))
    async with Sender(make_config(), client=appliance, clock=clock) as sender:
        with pytest.raises(NotAllowedError):
            await sender.send(SHA1, hashes(8))
    assert len(appliance.seen) == 1


async def test_a_failure_among_the_parts_of_a_request_is_raised_rather_than_a_stop() -> None:
    """When the parts of a split request end in a stop (SendingStopped) and a failure in the
    same turn, the failure is what the send raises, though the stop came first."""
    both_end = asyncio.Event()

    async def stopped() -> Decision:
        await both_end.wait()
        raise SendingStopped

    async def refused_meanwhile() -> Decision:
        await both_end.wait()
        raise CredentialsError("the appliance refused the token")

    async def end_both() -> None:
        await asyncio.sleep(0)
        both_end.set()

    ending = asyncio.create_task(end_both())
    with pytest.raises(CredentialsError):
        await calls.gather([stopped(), refused_meanwhile()])
    await ending


async def test_503_then_success_is_retried_with_backoff(clock: Any) -> None:
    """Two HTML 503s, then the answer: queued after 3 attempts, having slept twice."""
    hs = hashes(2)
    appliance = FakeAppliance(sequence(html(503), html(502), then=World(hs)))
    async with Sender(make_config(), client=appliance, clock=clock, rand=lambda: 0.5) as sender:
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    assert {v.attempts for v in verdicts.values()} == {3}
    assert stats.retries == 2
    assert stats.requests == 3
    assert clock.slept == [0.025, 0.05]  # full jitter at 0.5 of 0.05 * 2**(n-1)


async def test_retries_exhausted_gives_failed_and_the_job_goes_on(clock: Any) -> None:
    """After max_retries the hashes are failed with a reason; the next batch still works."""
    hs = hashes(4)
    appliance = FakeAppliance(sequence(html(500), html(500), html(500), then=World(hs)))
    async with Sender(make_config(max_retries=2), client=appliance, clock=clock) as sender:
        failed = await sender.send(SHA1, hs[:2])
        later = await sender.send(SHA1, hs[2:])
        stats = sender.stats
    assert {v.status for v in failed.values()} == {Status.FAILED}
    assert failed[hs[0]].attempts == 3
    assert failed[hs[0]].http_status == 500
    assert "HTTP 500" in (failed[hs[0]].reason or "")
    assert {v.status for v in later.values()} == {Status.QUEUED}
    assert stats.failed_hashes == 2


async def test_refused_connections_raise_unreachable_rather_than_failing_everything(
    clock: Any,
) -> None:
    """Connections refused for the whole window stop the job with UnreachableError, and no hash
    is turned into `failed` meanwhile."""
    config = make_config(
        "http://127.0.0.1:9", max_retries=1, unreachable_after=2, unreachable_window=30.0
    )
    async with Sender(config, client=FakeAppliance(refused), clock=clock) as sender:
        with pytest.raises(UnreachableError) as caught:
            await sender.send(SHA1, hashes(4))
        assert sender.stats.failed_hashes == 0
        with pytest.raises(UnreachableError):
            await sender.send(SHA1, hashes(4, 10))
    assert "127.0.0.1" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_an_appliance_that_never_answers_stops_the_job_when_its_window_ends(
    clock: Any,
) -> None:
    """Back-offs (up to 30 s here) do not carry the stop past the window: the last retry goes
    out as the window ends, so the job stops after 15 s, not after 15 s plus a back-off."""
    config = make_config("http://127.0.0.1:9", max_retries=5,
                         unreachable_after=2, unreachable_window_at_start=15.0,
                         backoff_base=4.0, backoff_cap=30.0)
    started = clock.now()
    async with Sender(config, client=FakeAppliance(refused), clock=clock,
                      rand=lambda: 0.99) as sender:
        with pytest.raises(UnreachableError, match="for 15 s"):
            await sender.send(SHA1, hashes(4))
    assert 15.0 <= clock.now() - started < 15.1


class _SilentClient:
    """An appliance that accepts every request and never answers."""

    async def reanalyze(self, hash_type: HashType, hashes: Any) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def sample_status(self, hashes: Any, *, processed_only: bool = False) -> Reply:
        return await self.reanalyze(SHA1, hashes)


async def test_requests_that_are_never_answered_stop_the_job_when_the_window_ends() -> None:
    """Requests in flight with no answer (the read timeout far away) are cut off by the
    watchdog once the window for an appliance that never answered has passed."""
    config = make_config(unreachable_window_at_start=0.3, read_timeout=3600.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Sender(config, client=_SilentClient()) as sender:
        with pytest.raises(UnreachableError, match="has not answered"):
            await asyncio.wait_for(sender.send(SHA1, hashes(8)), 10)
        assert sender.stats.in_flight == 0
    assert loop.time() - started < 2


class _StuckClock:
    """A clock whose sleeps never end: only a stop can end a back-off."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_a_stop_does_not_wait_for_back_offs_to_run_out() -> None:
    """Ctrl-C while requests wait to be retried: they stop waiting and are not sent (their
    hashes are left for the resume), rather than holding the run for up to a back-off cap."""
    appliance = FakeAppliance(lambda seen: html(503))
    config = make_config(backoff_base=30.0, backoff_cap=30.0)
    clock = _StuckClock()
    async with Sender(config, client=appliance, clock=clock) as sender:
        sending = asyncio.create_task(sender.send(SHA1, hashes(4)))
        await asyncio.wait_for(clock.sleeping.wait(), 5)  # the 503 came; a back-off began
        sender.stop_new_requests()
        with pytest.raises(SendingStopped):
            await asyncio.wait_for(sending, 5)
    assert len(appliance.seen) == 1


async def test_429_pauses_the_job_honours_retry_after_and_lowers_the_rate(clock: Any) -> None:
    """A 429 with Retry-After: 2 pauses for 2 s, halves the rate, and the retry succeeds."""
    hs = hashes(2)
    too_many = Reply(429, b"slow down", retry_after="2")
    appliance = FakeAppliance(sequence(too_many, then=World(hs)))
    async with Sender(make_config(rate_limit=10.0), client=appliance, clock=clock) as sender:
        start = clock.now()
        verdicts = await sender.send(SHA1, hs)
        stats = sender.stats
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    assert stats.throttled == 1
    assert stats.retries == 0
    assert stats.rate is not None
    assert stats.rate < 10.0
    assert clock.now() - start >= 2.0


async def test_a_request_drawing_too_many_429s_gives_up_as_failed(clock: Any) -> None:
    """Past `max_throttled` 429s a request's hashes are `failed`, and those 429s beyond the
    budget are not counted as pauses."""
    appliance = FakeAppliance(lambda seen: Reply(429, b"slow down", retry_after="1"))
    async with Sender(make_config(max_throttled=2), client=appliance, clock=clock) as sender:
        verdicts = await sender.send(SHA1, hashes(2))
        stats = sender.stats
    assert {v.status for v in verdicts.values()} == {Status.FAILED}
    assert len(appliance.seen) == 3
    assert stats.throttled == 2
    assert stats.failed_hashes == 2


async def test_concurrency_is_never_exceeded(clock: Any) -> None:
    """Twenty batches sent at once with concurrency 3: the appliance never sees more than 3."""
    in_flight = peak = 0
    world = World(hashes(20))

    async def slow(seen: Request) -> Reply:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(20):  # long enough for every other sender task to try to come in
            await asyncio.sleep(0)
        in_flight -= 1
        return world(seen)

    config = make_config(concurrency=3)
    async with Sender(config, client=FakeAppliance(slow), clock=clock) as sender:
        results = await asyncio.gather(*(sender.send(SHA1, [h]) for h in hashes(20)))
    assert all(r[h].status is Status.QUEUED for r, h in zip(results, hashes(20), strict=True))
    assert peak == 3


async def test_single_endpoint_sends_one_request_per_hash(clock: Any) -> None:
    """--endpoint single: one request per hash; 201 and 404 are read per sample."""
    hs = hashes(3)

    def handle(seen: Request) -> Reply:
        (h,) = seen.hashes
        if h == hs[2]:
            return json_reply({"detail": "Not found."}, status=404)
        return json_reply({"code": 201, "analysis": QUEUED, "detail": {"sha1": h}}, status=201)

    appliance = FakeAppliance(handle)
    async with Sender(make_config(endpoint="single"), client=appliance, clock=clock) as sender:
        verdicts = await sender.send(SHA1, hs)
    assert sorted(s.hashes for s in appliance.seen) == [[h] for h in hs]
    assert [verdicts[h].status for h in hs] == [Status.QUEUED, Status.QUEUED, Status.NOT_FOUND]


async def test_each_part_of_a_split_batch_is_named_in_its_log_events(clock: Any) -> None:
    """The halves of a batch refused whole each log as their own request: the same batch_id,
    and a part of their own, so that two 429s of two halves are told apart."""
    hs = hashes(4)
    answers: dict[tuple[str, ...], int] = {}

    def handler(request: Request) -> Any:
        key = tuple(request.hashes)
        answers[key] = answers.get(key, 0) + 1
        if len(key) == 4:
            return json_reply({"message": "Reanalysis not allowed for extracted samples."}, 405)
        if answers[key] == 1:
            return json_reply({}, 429, retry_after="0")
        return json_reply({"results": [result(h, QUEUED) for h in key]}, 201)

    structlog.contextvars.bind_contextvars(batch_id=7)
    try:
        with structlog.testing.capture_logs(
                processors=[structlog.contextvars.merge_contextvars]) as logs:
            async with Sender(make_config(), client=FakeAppliance(handler), clock=clock) as s:
                verdicts = await s.send(SHA1, hs)
    finally:
        structlog.contextvars.unbind_contextvars("batch_id")
    assert {v.status for v in verdicts.values()} == {Status.QUEUED}
    throttled = [e for e in logs if e["event"] in ("sender.throttled", "sender.rate_lowered")]
    assert sorted(e["part"] for e in throttled) == ["1", "2"]
    assert {e["batch_id"] for e in throttled} == {7}


async def test_a_lowered_rate_is_logged_to_two_decimals(clock: Any) -> None:
    """sender.rate_lowered gives the new pace as a person reads it (26.01, not
    26.006593611320866); the pacing itself keeps the full value."""

    class MeasuredGate(AdaptiveGate):
        """The adaptive gate, lowered to a rate as a real clock measures it."""

        def throttled(self, sent_in_epoch: int, pause: float) -> bool:
            super().throttled(sent_in_epoch, pause)
            return True

        @property
        def rate(self) -> float | None:
            return 26.006593611320866

    answers = iter([json_reply({}, 429, retry_after="0")])

    def handler(request: Request) -> Any:
        return next(answers, None) or json_reply(
            {"results": [result(h, QUEUED) for h in request.hashes]}, 201)

    config = make_config()
    with structlog.testing.capture_logs() as logs:
        async with Sender(config, client=FakeAppliance(handler), clock=clock,
                          gate=MeasuredGate(config.rate_limit, clock)) as sender:
            await sender.send(SHA1, hashes(4))
    (lowered,) = [e for e in logs if e["event"] == "sender.rate_lowered"]
    assert lowered["rate"] == 26.01
