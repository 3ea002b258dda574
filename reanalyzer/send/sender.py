"""Sending: turn a batch of hashes into requests and every answer into a verdict for every hash.

This is the loop and nothing else. One request reads top to bottom in `Sender._send_request`:
wait for a slot (the concurrency semaphore, then the rate gate), send, let `answers` decide what
the answer says and `health` what the job does about it, then carry that out.

- DONE: each hash gets its verdict, with the number of requests it was part of.
- SPLIT (400/405 for the whole bulk request) and SHRINK (413): send the parts; 413 also starts
  the search for the largest batch (`health`), and `send` slices what it is given to it.
- THROTTLED (429): the job pauses (a probe's 429: its request only) for Retry-After, and the pace
  settles just under the rate the appliance accepted before it (see `pacing`).
- RETRY (408/5xx, resets, timeouts, an answer too large to read, a page that is not the API's
  once the API has answered in this run): capped exponential backoff with full jitter; after
  `max_retries` the hashes become `failed` and the job goes on; an outage stops it (`health`).
  A RETRY of an answer that settled some hashes clearly (`Decision.unsettled`) keeps their
  outcomes and sends only the others again; the request's outcomes are merged at the end.
- Fatal: 401/403 raise CredentialsError, a 405 for the appliance type NotAllowedError, a redirect
  (or, on bulk, a whole-request 404 or an HTML page: not the API at this URL) MisconfiguredError, at
  once, and every other request of the job raises the same from then on. MisconfiguredError only
  while nothing in this run was answered in the API's shape: after that, such answers are a bad
  moment (a proxy's or a login page), retried, and past the outage window UnreachableError.

Over 300 lines for that one concern: each kind of decision is carried out in a few lines here,
beside the counters and the live change of the pace they steer; spreading them over modules
would scatter the story of one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import structlog

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Verdicts
from reanalyzer.errors import (
    CredentialsError,
    MisconfiguredError,
    NameNotResolved,
    NotAllowedError,
    ReanalyzerError,
    SendingStopped,
    TransportError,
    UnreachableError,
)
from reanalyzer.send import calls
from reanalyzer.send.answers import Action, Decision
from reanalyzer.send.calls import Call, ReanalyzeClient
from reanalyzer.send.client import ApplianceClient, Reply
from reanalyzer.send.config import SendConfig
from reanalyzer.send.health import Health, Next
from reanalyzer.send.pacing import AdaptiveGate, CeilingGate, Clock, RateGate, SystemClock
from reanalyzer.send.slots import Slots
from reanalyzer.send.watchdog import Watchdog

log = structlog.get_logger("reanalyzer.send.sender")

# The answers that stop the job at once, and what they raise.
_FATAL: dict[Action, type[ReanalyzerError]] = {
    Action.BAD_CREDENTIALS: CredentialsError,
    Action.REFUSED: NotAllowedError,
    Action.MISCONFIGURED: MisconfiguredError,
}


@dataclass(frozen=True, slots=True)
class SenderStats:
    """A snapshot of the sender's counters, for the progress display."""

    requests: int  # HTTP requests sent, retries and split parts included; status ones too
    status_requests: int  # of `requests`, those asking the status endpoint (--precheck)
    retries: int  # requests sent again after a transient failure (429s not included)
    throttled: int  # 429 answers
    splits: int  # requests split in parts after a whole-request 400/405/413
    failed_hashes: int  # hashes given `failed` after their retries ran out
    in_flight: int  # requests sent and not yet answered
    rate: float | None  # the gate's current rate, requests/s; None: unlimited
    max_batch: int | None  # the largest bulk request the job still sends; None: as given
    by_http_status: Mapping[int, int] = field(default_factory=dict)  # answers; 0: none came


class Sender:
    """Sends hashes for reanalysis; `send` returns a verdict for every hash it was given.

    Use as an async context manager (it opens and closes the HTTP session). `clock` (monotonic
    time and sleep), `rand` (backoff jitter) and `wall_now` (for Retry-After dates) are seams for
    tests; `client` and `gate` may be replaced by fakes.
    """

    def __init__(
        self,
        config: SendConfig,
        *,
        client: ReanalyzeClient | None = None,
        gate: RateGate | None = None,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        wall_now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_batch: int | None = None,
    ) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._own_client: ApplianceClient | None = None
        if client is None:
            client = self._own_client = ApplianceClient(config)
        self._client: ReanalyzeClient = client
        self._gate: RateGate = gate or AdaptiveGate(config.rate_limit, self._clock)
        # Public too: the run cuts its batches at the sizes the job learned (health.batch_to_cut).
        self.health = self._health = Health.of(
            config, self._clock, max_batch, rand=rand, wall_now=wall_now
        )
        self._slots = Slots(config.concurrency)  # resizable: the operator may change it live
        # The job's first request goes alone: it pays for the first connection and the first use
        # of every code path (measured: ~20 ms late at the appliance), and requests granted
        # behind it would otherwise reach the appliance bunched up, R+1 in one of its seconds.
        self._first_answered = asyncio.Event()
        self._first_taken = False
        self._no_new_requests = False  # the run is stopping: send nothing more
        self._stopping = asyncio.Event()  # set with the above, or on a fatal error
        self._fatal: ReanalyzerError | None = None
        self._requests = self._retries = self._throttled = self._splits = 0
        self._failed_hashes = self._in_flight = self._status_requests = 0
        self._api_answered = False  # an answer in the API's shape came: the API is at this URL
        self._watchdog = Watchdog(self._health, self._clock)
        self._watching: asyncio.Task[None] | None = None
        self._by_http_status: Counter[int] = Counter()

    async def __aenter__(self) -> Self:
        if self._own_client is not None:
            await self._own_client.__aenter__()
        self._health.start()
        self._watching = asyncio.create_task(self._watchdog.run(self._on_silence))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._watching is not None:
            self._watching.cancel()
        if self._own_client is not None:
            await self._own_client.close()

    @property
    def stats(self) -> SenderStats:
        return SenderStats(
            requests=self._requests,
            status_requests=self._status_requests,
            retries=self._retries,
            throttled=self._throttled,
            splits=self._splits,
            failed_hashes=self._failed_hashes,
            in_flight=self._in_flight,
            rate=self._gate.rate,
            max_batch=self._health.largest("reanalyze"),
            by_http_status=dict(self._by_http_status),
        )

    def set_pace(self, rate_limit: float | None, concurrency: int) -> None:
        """A new rate ceiling (the 429 adaptation goes on under it) and requests in flight at
        most, for what is not yet sent: a timetable's switch, the operator's control file."""
        if isinstance(self._gate, CeilingGate):
            self._gate.set_ceiling(rate_limit)
        self._slots.resize(concurrency)

    async def send(self, hash_type: HashType, hashes: Sequence[str]) -> Verdicts:
        """A verdict for every hash in `hashes` (normalized, of `hash_type`), keyed by the hash.

        Raises CredentialsError, NotAllowedError, UnreachableError or MisconfiguredError when
        the job cannot go on; never drops a hash otherwise.
        """
        self._raise_if_stopped()
        if not hashes:
            return Verdicts()
        call = calls.reanalysis(
            self._client, self._config.endpoint == "single", hash_type, self._answered_in_shape
        )
        return (await self._send_parts(call, hashes)).verdicts

    async def precheck(self, hash_type: HashType, hashes: Sequence[str]) -> set[str]:
        """The subset of `hashes` (normalized, of `hash_type`) that the appliance holds, asked
        through POST /api/samples/status/, which queues nothing.

        Paced, limited, retried and split like reanalysis requests, counted in `stats.requests`
        (and apart, in `stats.status_requests`), and it raises the same errors. A hash the
        appliance does not say `not_found` for, or whose requests ran out of retries, counts as
        held: it is then sent for reanalysis, whose answer gives it its true outcome, rather
        than being recorded `not_found` on a guess.
        """
        self._raise_if_stopped()
        if not hashes:
            return set()
        call = calls.status(self._client, self._answered_in_shape)
        return set((await self._send_parts(call, hashes)).held)

    def _answered_in_shape(self) -> bool:
        return self._api_answered

    async def _send_parts(self, call: Call, hashes: Sequence[str]) -> Decision:
        return await self._send_all(call, self._health.parts(call.kind, hashes), 0)

    async def _send_request(self, call: Call, batch: Sequence[str], attempts: int) -> Decision:
        """Send `batch` until its answer settles it: a DONE decision covering every hash."""
        retries = throttles = 0
        settled: Decision | None = None  # what earlier answers clearly settled of `batch`
        while True:
            reply, failure, epoch = await self._attempt(call, batch)
            attempts += 1
            self._by_http_status[reply.status if reply is not None else 0] += 1
            decision = (
                Decision(Action.RETRY, None, failure)
                if reply is None
                else call.decide(reply, batch, attempts)
            )
            self._api_answered |= decision.in_api_shape
            action = decision.action
            if action is Action.DONE:
                self._health.answered(call.kind, len(batch))
                log.debug(
                    "sender.answered",
                    batch_size=len(batch),
                    attempt=attempts,
                    http_status=decision.http_status,
                )
                return calls.merged(settled, decision)
            bound = log.bind(
                request=call.kind,
                batch_size=len(batch),
                attempt=attempts,
                http_status=decision.http_status,
                reason=decision.reason,
            )
            if action in (Action.SPLIT, Action.SHRINK):
                self._health.answered()
                parts = self._split(call.kind, batch, decision, bound)
                return calls.merged(settled, await self._send_all(call, parts, attempts))
            if action in _FATAL:
                self._stop(_FATAL[action](decision.reason), bound)
            if action is Action.THROTTLED:
                throttles += 1
                if not self._on_throttled(reply, throttles, epoch, bound):
                    return calls.merged(settled, self._give_up(call, batch, attempts, decision))
                continue  # the gate holds every request until the pause is over
            # Action.RETRY: a failure without a usable answer (for `unsettled`, if it says).
            if decision.unsettled:  # the rest was clearly answered: keep it, resend only these
                settled = calls.merged(settled, decision)
                batch = decision.unsettled
            after = self._health.failed(decision.reason, retries)
            if after.next is Next.UNREACHABLE:
                self._stop(
                    UnreachableError(
                        f"{after.reason}; the same command resumes once it answers again"
                    ),
                    log,
                )
            if after.next is Next.GIVE_UP:
                return calls.merged(settled, self._give_up(call, batch, attempts, decision))
            retries += not after.outage  # an outage spends no request's retries
            self._retries += 1
            bound.info("sender.retry_scheduled", delay=round(after.delay, 3), outage=after.outage)
            await self._back_off(after.delay)

    async def _attempt(self, call: Call, batch: Sequence[str]) -> tuple[Reply | None, str, int]:
        """One request: a concurrency slot, then a rate slot (in that order, so that a granted
        rate slot is used at once and grants stay evenly spaced), then the request itself."""
        async with self._slots:
            first = not self._first_taken
            self._first_taken = True
            if not first:
                await self._first_answered.wait()
            self._raise_if_stopped()
            await self._rate_slot()
            self._raise_if_stopped()
            cap = self._config.max_requests
            if self._no_new_requests or (cap is not None and self._requests >= cap):
                self._first_answered.set()  # no request waits for a first that never goes
                raise SendingStopped
            epoch = self._gate.epoch
            self._requests += 1
            self._status_requests += call.kind == "status"
            self._in_flight += 1
            task = self._watchdog.sending()
            try:
                result: tuple[Reply | None, str, int] = (await call.send(batch), "", epoch)
                self._health.heard()
            except TransportError as exc:
                why = (
                    self._health.name_unresolved(str(exc))
                    if isinstance(exc, NameNotResolved)
                    else None
                )
                if why is not None:
                    self._stop(MisconfiguredError(why), log)
                result = (None, str(exc), epoch)
            except asyncio.CancelledError:
                if self._watchdog.cut_off(task):  # the appliance is silent: the job's error
                    self._raise_if_stopped()
                raise
            finally:
                self._watchdog.done(task)
                self._in_flight -= 1
                if first:
                    self._gate.restart()
                    self._first_answered.set()
        # The slot is free and a request waiting for it has been woken: let it reach the
        # appliance before this answer is read (~1 ms of CPU), so that the appliance is not left
        # idle meanwhile. That takes two turns of the loop: one for the waiter to run up to
        # aiohttp's request, one for the task aiohttp starts to write the body. (One turn: 78-82%
        # of Little's law at 20 ms and 8 in flight; two: 89-92%; bench.py send.)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return result

    def _split(
        self, kind: str, batch: Sequence[str], decision: Decision, bound: Any
    ) -> list[Sequence[str]]:
        self._splits += 1
        too_large = decision.action is Action.SHRINK
        split = self._health.split(kind, batch, too_large=too_large)
        if split.learned is not None:
            bound.warning("sender.batch_shrunk", max_batch=split.learned)
        elif not too_large:
            bound.info("sender.split")
        return split.parts

    async def _send_all(
        self, call: Call, parts: Sequence[Sequence[str]], attempts: int
    ) -> Decision:
        if len(parts) == 1:
            return await self._send_request(call, parts[0], attempts)
        return await calls.gather(self._send_request(call, p, attempts) for p in parts)

    def _on_throttled(self, reply: Reply | None, throttles: int, epoch: int, bound: Any) -> bool:
        """Pause the job for a 429; False if the request has drawn too many to go on."""
        pause = self._health.throttled(reply.retry_after if reply else None, throttles)
        if pause is None:
            return False
        self._throttled += 1
        if self._gate.throttled(epoch, pause.seconds):
            bound.warning(
                "sender.rate_lowered",
                rate=_rounded(self._gate.rate),
                pause=round(pause.seconds, 3),
                retry_after=pause.retry_after,
            )
        else:
            bound.info("sender.throttled", pause=round(pause.seconds, 3))
        return True

    def _give_up(
        self, call: Call, batch: Sequence[str], attempts: int, decision: Decision
    ) -> Decision:
        """A request out of retries: the job goes on without its answer."""
        log.warning(
            call.gave_up_event,
            batch_size=len(batch),
            attempt=attempts,
            http_status=decision.http_status,
            reason=decision.reason,
        )
        settled = call.give_up(batch, attempts, decision)
        self._failed_hashes += len(settled.verdicts)
        return settled

    def _stop(self, error: ReanalyzerError, bound: Any) -> None:
        if self._fatal is None:
            self._fatal = error
            self._stopping.set()
            bound.error("sender.stopped", error=type(error).__name__, message=str(error))
        raise error

    def _on_silence(self, reason: str) -> None:
        """The watchdog found the appliance silent: the job's error, for every request."""
        with contextlib.suppress(UnreachableError):
            self._stop(UnreachableError(reason), log)

    def stop_new_requests(self) -> None:
        """From now on every request not yet sent raises SendingStopped instead of going out;
        those in flight still finish. For a clean stop: what was not sent waits for a resume."""
        self._no_new_requests = True
        self._stopping.set()

    async def _rate_slot(self) -> None:
        """The rate gate's grant, unless the job stops first: a stop does not wait out a 429's
        pause (Retry-After may ask minutes); the caller raises it. Not raced while the gate
        never waits (every request of a fast job: a race costs two tasks)."""
        if self._gate.rate is None and not self._throttled:
            await self._gate.acquire()
        else:
            await calls.unless_set(self._gate.acquire(), self._stopping)

    async def _back_off(self, delay: float) -> None:
        """Wait `delay` seconds before a retry, unless the job stops meanwhile: a stop does not
        wait for back-offs (up to `backoff_cap` each) to run out only to send nothing. The
        request is then not sent, and its hashes wait for the resume."""
        await calls.unless_set(self._clock.sleep(delay), self._stopping)
        self._raise_if_stopped()
        if self._no_new_requests:
            raise SendingStopped

    def _raise_if_stopped(self) -> None:
        if self._fatal is not None:
            raise type(self._fatal)(str(self._fatal))


def _rounded(rate: float | None) -> float | None:
    """A rate as an event gives it: 2 decimals (the pacing works on the full value)."""
    return None if rate is None else round(rate, 2)
