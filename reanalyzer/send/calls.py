"""The kinds of request the sender makes, each as a value: how a batch goes out, what its answer
means, and what giving up on it means. The sender's loop is the same for all of them.

    reanalysis(client, config, hash_type)   the bulk or single-sample endpoint: verdicts
    status(client)                          POST /api/samples/status/: the hashes held
    gather(parts)                           the parts of a split request, settled together
    unless_set(waiting, event)              a wait that a stop cuts short
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status, Verdict, Verdicts
from reanalyzer.core.words import counted
from reanalyzer.errors import ControlFlow, ReanalyzerError
from reanalyzer.send.answers import (
    Action,
    Decision,
    decide_bulk,
    decide_single,
    decide_status,
    parse_body,
)
from reanalyzer.send.client import Reply
from reanalyzer.send.fast_answers import read_bulk_answer


class ReanalyzeClient(Protocol):
    """What the sender needs from the HTTP edge (ApplianceClient, or a fake in tests)."""

    async def reanalyze(self, hash_type: HashType, hashes: Sequence[str]) -> Reply: ...

    async def sample_status(self, hashes: Sequence[str]) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Call:
    """One kind of request: how a batch is sent, what an answer means, what giving up means."""

    kind: str  # "reanalyze" or "status": names the largest batch that kind may still send
    send: Callable[[Sequence[str]], Awaitable[Reply]]
    decide: Callable[[Reply, Sequence[str], int], Decision]  # (reply, batch, attempts)
    give_up: Callable[[Sequence[str], int, Decision], Decision]  # (batch, attempts, last)
    gave_up_event: str  # the log event of a give-up


def reanalysis(
    client: ReanalyzeClient,
    single: bool,
    hash_type: HashType,
    answered: Callable[[], bool] = lambda: False,
) -> Call:
    """Reanalysis of hashes of `hash_type`, one per request when `single`. `answered` tells
    whether this run has had an answer in the API's shape (see `Decision.in_api_shape`)."""

    def decide(reply: Reply, batch: Sequence[str], attempts: int) -> Decision:
        if single:
            body, text = _read(reply)
            return decide_single(
                reply.status,
                body,
                batch[0],
                text,
                attempts=attempts,
                answered_before=answered(),
                content_type=reply.content_type,
            )
        verdicts = read_bulk_answer(reply.status, reply.body, hash_type, batch, attempts)
        if verdicts is not None:  # the usual answer, read fast; decide_bulk reads any other
            return Decision(Action.DONE, reply.status, "answered", verdicts, in_api_shape=True)
        body, text = _read(reply)
        return decide_bulk(
            reply.status,
            body,
            hash_type,
            batch,
            text,
            attempts=attempts,
            answered_before=answered(),
            content_type=reply.content_type,
        )

    return Call(
        "reanalyze",
        lambda batch: client.reanalyze(hash_type, batch),
        decide,
        _failed,
        "sender.gave_up",
    )


def status(client: ReanalyzeClient, answered: Callable[[], bool] = lambda: False) -> Call:
    """The status pre-check: which hashes the appliance holds, queuing nothing."""
    return Call(
        "status",
        lambda batch: client.sample_status(batch),
        lambda reply, batch, attempts: decide_status(
            reply.status,
            *_read(reply),
            batch,
            answered_before=answered(),
            content_type=reply.content_type,
        ),
        _held_anyway,
        "sender.precheck_gave_up",
    )


def merged(earlier: Decision | None, later: Decision) -> Decision:
    """`later` (settling what is left of a request) with what `earlier` answers of the same
    request clearly settled: a RETRY of its `unsettled` part keeps the others' outcomes."""
    if earlier is None:
        return later
    verdicts = Verdicts()
    verdicts.update(earlier.verdicts)
    verdicts.update(later.verdicts)
    return Decision(
        Action.DONE,
        later.http_status,
        later.reason,
        verdicts,
        earlier.held | later.held,
        in_api_shape=later.in_api_shape,
    )


def _failed(batch: Sequence[str], attempts: int, decision: Decision) -> Decision:
    """A reanalysis request out of retries: its hashes become `failed`; the job goes on."""
    reason = f"gave up after {counted(attempts, 'attempt')}: {decision.reason}"
    verdict = Verdict(Status.FAILED, decision.http_status, attempts, reason=reason)
    return Decision(
        Action.DONE, decision.http_status, reason, Verdicts(dict.fromkeys(batch, verdict))
    )


def _held_anyway(batch: Sequence[str], attempts: int, decision: Decision) -> Decision:
    """A status request out of retries: its hashes count as held, so that reanalysis gives them
    their true outcome rather than `not_found` on a guess (see `Sender.precheck`)."""
    return Decision(Action.DONE, decision.http_status, decision.reason, held=frozenset(batch))


def _read(reply: Reply) -> tuple[object | None, str]:
    """The parsed body, and the raw text where the decision may need it (a 405's phrases, a body
    that is not JSON); else the text is not decoded."""
    body = parse_body(reply.body)
    return body, reply.text if body is None or reply.status == 405 else ""


async def gather(coros: Iterable[Coroutine[Any, Any, Decision]]) -> Decision:
    """Run the parts together and merge what they settled; if one raises, cancel the others and
    raise its error itself (not an ExceptionGroup), preferring the tool's own errors, and a
    failure to a stop."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(c, context=_part_context(number))
                for number, c in enumerate(coros, 1)
            ]
    except BaseExceptionGroup as failures:
        leaves = list(_leaves(failures))
        # A stop (ControlFlow) is no failure: it is raised only if nothing else was.
        ours = [
            e for e in leaves if isinstance(e, ReanalyzerError) and not isinstance(e, ControlFlow)
        ]
        raise (ours[0] if ours else leaves[0]) from None
    merged = Verdicts()
    held: set[str] = set()
    for task in tasks:
        part = task.result()
        merged.update(part.verdicts)
        held |= part.held
    return Decision(Action.DONE, None, "answered in parts", merged, frozenset(held))


def _part_context(number: int) -> contextvars.Context:
    """The context of the `number`-th part: its log events name it by `part` ("2", or "2.1"
    for a part of a part) beside the batch's `batch_id`, so that each request is told apart."""
    context = contextvars.copy_context()

    def name_it() -> None:
        parent = structlog.contextvars.get_contextvars().get("part")
        structlog.contextvars.bind_contextvars(part=f"{parent}.{number}" if parent else str(number))

    context.run(name_it)
    return context


async def unless_set(waiting: Coroutine[Any, Any, None], event: asyncio.Event) -> None:
    """Await `waiting` (a back-off, the rate gate's grant) unless `event` is set first, or
    already; then it is cancelled. Its own error, if it raised one, is raised."""
    if event.is_set():
        waiting.close()
        return
    task = asyncio.ensure_future(waiting)
    stopping = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        task.cancel()
    if task.done() and not task.cancelled():
        task.result()


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
