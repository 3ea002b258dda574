"""Sending: turn a batch of hashes into requests and every answer into a verdict for every hash.

The loop of one request reads top to bottom in `Sender._send_request`: wait for a slot (the
concurrency semaphore, then the rate gate), send, let `answers` decide, carry the decision out.

- DONE: each hash gets its verdict, with the number of requests it was part of.
- SPLIT (400/405 for the whole bulk request) and SHRINK (413): send the parts; 413 also lowers
  the largest batch for the rest of the job, and `send` honours it by splitting what it is given.
- THROTTLED (429): the whole job pauses for Retry-After (or a backoff) and the rate is halved once
  per signal, then recovered gradually (see `pacing`). A request may draw `max_throttled` 429s.
- RETRY (408/5xx, resets, timeouts): capped exponential backoff with full jitter; after
  `max_retries` the hashes become `failed` and the job goes on.
- Fatal: 401/403 raise CredentialsError, a 405 for the appliance type NotAllowedError, a redirect
  (or, on bulk, a whole-request 404 or an HTML page: not the API at this URL) MisconfiguredError, at
  once, and every other request of the job raises the same from then on.

Unreachable, chosen rule: a failure without a usable answer (no connection, reset, timeout, 408,
5xx) extends a streak shared by all requests; any other answer ends it. Once the streak reaches
`unreachable_after` the appliance counts as down: retries stop consuming the requests' budgets (so
an outage does not turn every hash in flight into `failed`), and when no usable answer has come
for `unreachable_window` seconds the job stops with UnreachableError.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import structlog

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status, Verdict, Verdicts
from reanalyzer.errors import (
    CredentialsError,
    MisconfiguredError,
    NotAllowedError,
    ReanalyzerError,
    UnreachableError,
)
from reanalyzer.send.answers import (
    Action,
    Decision,
    chunked,
    decide_bulk,
    decide_single,
    decide_status,
    halves,
    parse_body,
)
from reanalyzer.send.backoff import RetryPolicy, parse_retry_after
from reanalyzer.send.client import ApplianceClient, Reply, TransportError
from reanalyzer.send.config import SendConfig
from reanalyzer.send.fast_answers import read_bulk_answer
from reanalyzer.send.pacing import AdaptiveGate, Clock, RateGate, SystemClock

log = structlog.get_logger("reanalyzer.send.sender")


class ReanalyzeClient(Protocol):
    """What the sender needs from the HTTP edge (ApplianceClient, or a fake in tests)."""

    async def reanalyze(self, hash_type: HashType, hashes: Sequence[str]) -> Reply: ...

    async def sample_status(
        self, hashes: Sequence[str], *, processed_only: bool = False
    ) -> Reply: ...


@dataclass(frozen=True, slots=True)
class _Call:
    """One kind of request: how a batch is sent, what an answer means, what giving up means."""

    kind: str  # "reanalyze" or "status": names the largest batch that kind may still send
    send: Callable[[Sequence[str]], Awaitable[Reply]]
    decide: Callable[[Reply, Sequence[str], int], Decision]
    give_up: Callable[[Sequence[str], int, Decision], Decision]


@dataclass(frozen=True, slots=True)
class SenderStats:
    """A snapshot of the sender's counters, for the progress display."""

    requests: int  # HTTP requests sent, retries and split parts included
    retries: int  # requests sent again after a transient failure (429s not included)
    throttled: int  # 429 answers
    splits: int  # requests split in parts after a whole-request 400/405/413
    failed_hashes: int  # hashes given `failed` after their retries ran out
    in_flight: int  # requests sent and not yet answered
    rate: float | None  # the gate's current rate, requests/s; None: unlimited
    max_batch: int | None  # the largest bulk request the job still sends; None: as given


class SendingStopped(Exception):  # a state, not a failure
    """The run is stopping (or --max-requests is spent): this request was not sent. Its hashes
    get no outcome from this run; the resume sends them."""


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
        self._policy = RetryPolicy(config.max_retries, config.backoff_base, config.backoff_cap)
        self._rand = rand
        self._wall_now = wall_now
        self._slots = asyncio.Semaphore(config.concurrency)
        # The job's first request goes alone: it pays for the first connection and the first use
        # of every code path (measured: ~20 ms late at the appliance), and requests granted
        # behind it would otherwise reach the appliance bunched up, R+1 in one of its seconds.
        self._first_answered = asyncio.Event()
        self._first_taken = False
        self._no_new_requests = False  # the run is stopping: send nothing more
        self._stopping = asyncio.Event()  # set with the above, or on a fatal error
        # The largest batch each kind of request may still send (413 lowers it); None: as given.
        self._max_batch: dict[str, int | None] = {
            "reanalyze": 1 if config.endpoint == "single" else max_batch,
            "status": max_batch,
        }
        self._fatal: ReanalyzerError | None = None
        self._streak = 0  # consecutive failures without a usable answer, across requests
        self._last_answer = self._clock.now()
        self._answered_once = False
        self._last_failure = ""
        self._throttle_streak = 0  # consecutive 429s across requests, for the backoff without RA
        self._requests = self._retries = self._throttled = self._splits = 0
        self._failed_hashes = self._in_flight = 0

    async def __aenter__(self) -> Self:
        if self._own_client is not None:
            await self._own_client.__aenter__()
        self._last_answer = self._clock.now()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own_client is not None:
            await self._own_client.close()

    @property
    def stats(self) -> SenderStats:
        return SenderStats(
            requests=self._requests,
            retries=self._retries,
            throttled=self._throttled,
            splits=self._splits,
            failed_hashes=self._failed_hashes,
            in_flight=self._in_flight,
            rate=self._gate.rate,
            max_batch=self._max_batch["reanalyze"],
        )

    async def send(self, hash_type: HashType, hashes: Sequence[str]) -> Verdicts:
        """A verdict for every hash in `hashes` (normalized, of `hash_type`), keyed by the hash.

        Raises CredentialsError, NotAllowedError, UnreachableError or MisconfiguredError when
        the job cannot go on; never drops a hash otherwise.
        """
        self._raise_if_stopped()
        if not hashes:
            return Verdicts()
        call = _Call(
            "reanalyze",
            lambda batch: self._client.reanalyze(hash_type, batch),
            lambda reply, batch, attempts: self._decide(hash_type, batch, reply, attempts),
            self._give_up,
        )
        return (await self._send_parts(call, hashes)).verdicts

    async def precheck(self, hash_type: HashType, hashes: Sequence[str]) -> set[str]:
        """The subset of `hashes` (normalized, of `hash_type`) that the appliance holds, asked
        through POST /api/samples/status/, which queues nothing.

        Paced, limited, retried and split like reanalysis requests, counted in `stats.requests`,
        and it raises the same errors. A hash the appliance does not say `not_found` for, or
        whose requests ran out of retries, counts as held: it is then sent for reanalysis, whose
        answer gives it its true outcome, rather than being recorded `not_found` on a guess.
        """
        self._raise_if_stopped()
        if not hashes:
            return set()
        call = _Call(
            "status",
            lambda batch: self._client.sample_status(batch),
            lambda reply, batch, attempts: decide_status(reply.status, *_read(reply), batch),
            self._give_up_status,
        )
        return set((await self._send_parts(call, hashes)).held)

    async def _send_parts(self, call: _Call, hashes: Sequence[str]) -> Decision:
        largest = self._max_batch[call.kind]
        parts = chunked(hashes, largest) if largest else [hashes]
        return await self._send_all(call, parts, 0)

    async def _send_request(self, call: _Call, batch: Sequence[str], attempts: int) -> Decision:
        """Send `batch` until its answer settles it: a DONE decision covering every hash."""
        retries = throttles = 0
        while True:
            reply, failure, epoch = await self._attempt(call, batch)
            attempts += 1
            if reply is None:
                decision = Decision(Action.RETRY, None, failure)
            else:
                decision = call.decide(reply, batch, attempts)
            action = decision.action
            if action is Action.DONE:
                self._track_answer()
                log.debug(
                    "sender.answered",
                    batch_size=len(batch),
                    attempt=attempts,
                    http_status=decision.http_status,
                )
                return decision
            bound = log.bind(
                request=call.kind,
                batch_size=len(batch),
                attempt=attempts,
                http_status=decision.http_status,
                reason=decision.reason,
            )
            if action in (Action.SPLIT, Action.SHRINK):
                self._track_answer()
                parts = self._split(call.kind, batch, decision, bound)
                return await self._send_all(call, parts, attempts)
            if action is Action.BAD_CREDENTIALS:
                self._stop(CredentialsError(decision.reason), bound)
            if action is Action.REFUSED:
                self._stop(NotAllowedError(decision.reason), bound)
            if action is Action.MISCONFIGURED:
                self._stop(MisconfiguredError(decision.reason), bound)
            if action is Action.THROTTLED:
                throttles += 1
                if throttles > self._config.max_throttled:
                    return call.give_up(batch, attempts, decision)
                self._on_throttled(reply, epoch, bound)
                continue  # the gate holds every request until the pause is over
            # Action.RETRY: a failure without a usable answer.
            outage = self._track_failure(decision.reason)
            if not outage:
                if self._policy.exhausted(retries):
                    return call.give_up(batch, attempts, decision)
                retries += 1
            self._retries += 1
            delay = self._policy.delay(
                max(retries, 1) if not outage else self._streak, rand=self._rand
            )
            if outage:  # try again when the window ends: its failure then stops the job on time
                left = self._outage_window() - (self._clock.now() - self._last_answer)
                delay = min(delay, max(left, 0.0) + 0.01)
            bound.info("sender.retry_scheduled", delay=round(delay, 3), outage=outage)
            await self._back_off(delay)

    async def _attempt(
        self, call: _Call, batch: Sequence[str]
    ) -> tuple[Reply | None, str, int]:
        """One request: a concurrency slot, then a rate slot (in that order, so that a granted
        rate slot is used at once and grants stay evenly spaced), then the request itself."""
        async with self._slots:
            first = not self._first_taken
            self._first_taken = True
            if not first:
                await self._first_answered.wait()
            self._raise_if_stopped()
            await self._gate.acquire()
            self._raise_if_stopped()
            cap = self._config.max_requests
            if self._no_new_requests or (cap is not None and self._requests >= cap):
                self._first_answered.set()  # no request waits for a first that never goes
                raise SendingStopped
            epoch = self._gate.epoch
            self._requests += 1
            self._in_flight += 1
            try:
                result: tuple[Reply | None, str, int] = (await call.send(batch), "", epoch)
            except TransportError as exc:
                result = (None, str(exc), epoch)
            finally:
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

    def _decide(
        self, hash_type: HashType, batch: Sequence[str], reply: Reply, attempts: int
    ) -> Decision:
        if self._config.endpoint == "single":
            body, text = _read(reply)
            return decide_single(reply.status, body, batch[0], text, attempts=attempts)
        verdicts = read_bulk_answer(reply.status, reply.body, hash_type, batch, attempts)
        if verdicts is not None:  # the usual answer, read fast; decide_bulk reads any other
            return Decision(Action.DONE, reply.status, "answered", verdicts)
        body, text = _read(reply)
        return decide_bulk(reply.status, body, hash_type, batch, text, attempts=attempts)

    def _split(
        self, kind: str, batch: Sequence[str], decision: Decision, bound: Any
    ) -> list[Sequence[str]]:
        self._splits += 1
        if decision.action is Action.SHRINK:
            smaller = max(1, len(batch) // 2)
            largest = self._max_batch[kind]
            if largest is None or smaller < largest:
                largest = self._max_batch[kind] = smaller
                bound.warning("sender.batch_shrunk", max_batch=smaller)
            return chunked(batch, largest)
        bound.info("sender.split")
        return halves(batch)

    async def _send_all(
        self, call: _Call, parts: Sequence[Sequence[str]], attempts: int
    ) -> Decision:
        if len(parts) == 1:
            return await self._send_request(call, parts[0], attempts)
        return await _gather_decisions(self._send_request(call, p, attempts) for p in parts)

    def _on_throttled(self, reply: Reply | None, epoch: int, bound: Any) -> None:
        self._throttled += 1
        self._throttle_streak += 1
        retry_after = parse_retry_after(reply.retry_after if reply else None, self._wall_now)
        pause = self._policy.delay(self._throttle_streak, retry_after, self._rand)
        if self._gate.throttled(epoch, pause):
            bound.warning(
                "sender.rate_lowered",
                rate=self._gate.rate,
                pause=round(pause, 3),
                retry_after=retry_after,
            )
        else:
            bound.info("sender.throttled", pause=round(pause, 3))

    def _give_up(self, batch: Sequence[str], attempts: int, decision: Decision) -> Decision:
        """A reanalysis request out of retries: its hashes become `failed`; the job goes on."""
        self._failed_hashes += len(batch)
        log.warning(
            "sender.gave_up",
            batch_size=len(batch),
            attempt=attempts,
            http_status=decision.http_status,
            reason=decision.reason,
        )
        reason = f"gave up after {attempts} attempts: {decision.reason}"
        verdict = Verdict(Status.FAILED, decision.http_status, attempts, reason=reason)
        return Decision(
            Action.DONE, decision.http_status, reason, Verdicts(dict.fromkeys(batch, verdict))
        )

    def _give_up_status(
        self, batch: Sequence[str], attempts: int, decision: Decision
    ) -> Decision:
        """A status request out of retries: its hashes count as held (see `precheck`)."""
        log.warning(
            "sender.precheck_gave_up",
            batch_size=len(batch),
            attempt=attempts,
            http_status=decision.http_status,
            reason=decision.reason,
        )
        return Decision(Action.DONE, decision.http_status, decision.reason, held=frozenset(batch))

    def _track_answer(self) -> None:
        """A usable answer: the appliance is up and working."""
        self._answered_once = True
        self._streak = 0
        self._throttle_streak = 0
        self._last_answer = self._clock.now()

    def _track_failure(self, reason: str) -> bool:
        """Count a failure without a usable answer; True while the appliance looks down. Raises
        UnreachableError once it has looked down for the whole `unreachable_window`."""
        self._streak += 1
        self._last_failure = reason
        if self._streak < self._config.unreachable_after:
            return False
        silent = self._clock.now() - self._last_answer
        if silent >= self._outage_window():
            self._stop(
                UnreachableError(
                    f"the appliance at {self._config.base_url} gave no usable answer for "
                    f"{silent:.0f} s ({self._streak} failures in a row, last: {reason})"
                ),
                log,
            )
        return True

    def _outage_window(self) -> float:
        """Seconds without a usable answer that mean the appliance is unreachable. One that
        never answered at all is most likely a wrong URL or a closed port: say so soon, rather
        than after the patience an outage mid-job deserves."""
        if self._answered_once:
            return self._config.unreachable_window
        return min(self._config.unreachable_window, self._config.unreachable_window_at_start)

    def _stop(self, error: ReanalyzerError, bound: Any) -> None:
        if self._fatal is None:
            self._fatal = error
            self._stopping.set()
            bound.error("sender.stopped", error=type(error).__name__, message=str(error))
        raise error

    def stop_new_requests(self) -> None:
        """From now on every request not yet sent raises SendingStopped instead of going out;
        those in flight still finish. For a clean stop: what was not sent waits for a resume."""
        self._no_new_requests = True
        self._stopping.set()

    async def _back_off(self, delay: float) -> None:
        """Wait `delay` seconds before a retry, unless the job stops meanwhile: a stop does not
        wait for back-offs (up to `backoff_cap` each) to run out only to send nothing. The
        request is then not sent, and its hashes wait for the resume."""
        if not self._stopping.is_set():
            sleeping = asyncio.ensure_future(self._clock.sleep(delay))
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeping.cancel()
                stopping.cancel()
        self._raise_if_stopped()
        if self._no_new_requests:
            raise SendingStopped

    def _raise_if_stopped(self) -> None:
        if self._fatal is not None:
            raise type(self._fatal)(str(self._fatal))


def _read(reply: Reply) -> tuple[object | None, str]:
    """The parsed body, and the raw text where the decision may need it (a 405's phrases, a body
    that is not JSON); else the text is not decoded."""
    body = parse_body(reply.body)
    return body, reply.text if body is None or reply.status == 405 else ""


async def _gather_decisions(coros: Iterable[Coroutine[Any, Any, Decision]]) -> Decision:
    """Run the parts together and merge what they settled; if one raises, cancel the others and
    raise its error itself (not an ExceptionGroup), preferring the tool's own errors."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failures:
        leaves = list(_leaves(failures))
        ours = [e for e in leaves if isinstance(e, ReanalyzerError)]
        raise (ours[0] if ours else leaves[0]) from None
    merged = Verdicts()
    held: set[str] = set()
    for task in tasks:
        part = task.result()
        merged.update(part.verdicts)
        held |= part.held
    return Decision(Action.DONE, None, "answered in parts", merged, frozenset(held))


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
