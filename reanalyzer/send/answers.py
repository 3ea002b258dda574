"""What an answer of the appliance means: pure functions from (HTTP status, body) to a decision.

No I/O here. The sender carries out the decision: it records the verdicts, retries, splits the
request, pauses the job, or stops it. Per-analysis codes are the truth; the top-level ``code`` and
``message`` of an item are deprecated and may be absent (see ``shared/api/NOTES.md``).

Over 300 lines for one concern: three endpoints' answers, each in every shape the API documents
or an appliance was seen to send (per-item codes, per-analysis codes, absent items, HTML pages,
phrases in a 405), read in one place so that no two readings can disagree.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import AnalysisResult, Status, Verdict, Verdicts

ACCEPTED_CODES = frozenset({200, 201})
RETRYABLE_STATUSES = frozenset({408, 500, 502, 503, 504})
# Phrases in a 405's body that mean no sample will ever be reanalyzed on this appliance, as opposed
# to "Reanalysis not allowed for extracted samples." which is about one sample of the request.
_APPLIANCE_REFUSES = ("type of appliance", "appliance type")
T = TypeVar("T")


class Action(enum.StrEnum):
    DONE = "done"  # every hash sent has its verdict in `Decision.verdicts`
    SPLIT = "split"  # the whole request was refused for one of its samples: send it in halves
    SHRINK = "shrink"  # 413: split, and keep requests smaller for the rest of the job
    RETRY = "retry"  # transient: send the same request again after a backoff
    THROTTLED = "throttled"  # 429: pause the whole job, lower the rate, then send it again
    BAD_CREDENTIALS = "bad_credentials"  # 401/403: stop the job, the token or its rights are wrong
    REFUSED = "refused"  # 405 for the appliance type: stop the job, nothing will ever be accepted
    MISCONFIGURED = "misconfigured"  # a redirect, a bulk 404, HTML: not the API here; stop the job


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one answer, and the verdicts when the answer settles every hash."""

    action: Action
    http_status: int | None
    reason: str  # short, in words: for logs and for the `failed` verdict when retries run out
    verdicts: Verdicts = field(default_factory=Verdicts)
    held: frozenset[str] = frozenset()  # a status answer: the hashes the appliance holds


def parse_body(raw: bytes) -> object | None:
    """The JSON body, or None when it is not JSON (an HTML error page, an empty body).

    msgspec parses faster than json (the usual answer does not even come here: see
    `fast_answers`). What it refuses but json's lenient parse allows (NaN, say) is left to json,
    so nothing parses differently.
    """
    try:
        return msgspec.json.decode(raw)  # type: ignore[no-any-return]  # JSON is untyped
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(raw)  # type: ignore[no-any-return]  # json is untyped by nature
    except (ValueError, UnicodeDecodeError):
        return None


def decide_bulk(
    status: int,
    body: object | None,
    hash_type: HashType,
    hashes: Sequence[str],
    text: str = "",
    *,
    attempts: int = 0,
) -> Decision:
    """Decide what a bulk answer (v1 or v2) means for the hashes sent, all of `hash_type`.

    `body` is the parsed JSON (None if unparseable) and `text` the raw body, searched for the
    appliance-type refusal. `hashes` are lowercase, as sent; `attempts` goes into the verdicts.
    """
    early = _decide_whole_request(status, body, text)
    if early is not None:
        return early
    items = _result_items(body)
    if items is not None:
        verdicts = match_results(items, hash_type, hashes, attempts=attempts, http_status=status)
        return Decision(Action.DONE, status, "answered", verdicts)
    wrong_place = _not_the_bulk_api(status, body)
    if wrong_place is not None:
        return wrong_place
    if 200 <= status < 300:
        return Decision(Action.RETRY, status, f"HTTP {status} without results")
    if status in (400, 405, 413) and len(hashes) == 1:
        verdict = _verdict_from_code(status, _message_of(body), status, attempts)
        reason = verdict.reason or status_text(status)
        return Decision(Action.DONE, status, reason, Verdicts({hashes[0]: verdict}))
    if status == 413:
        return Decision(Action.SHRINK, status, "request too large (413)")
    if status in (400, 405):
        return Decision(Action.SPLIT, status, f"whole request refused ({status})")
    return Decision(Action.RETRY, status, f"unexpected HTTP {status}")


def _not_the_bulk_api(status: int, body: object | None) -> Decision | None:
    """MISCONFIGURED when the answer cannot have come from the bulk endpoint, else None.

    The bulk endpoint answers 200/201/400/405/413 for a whole request, in JSON, and reports a
    sample it does not hold per item (or leaves it out): a whole-request 404 means the URL or
    the API version is wrong. So does a 2xx/400/405 that is not JSON (a web UI's or a proxy's
    HTML page): splitting it would only turn every hash into a wrong `not_found` or `invalid`.
    A 413 may well be a proxy's HTML page about its body limit, so that one is still believed.
    """
    if status == 404:
        seen = "a 404 for the whole bulk request"
    elif body is None and (200 <= status < 300 or status in (400, 405)):
        seen = f"HTTP {status} with a body that is not the API's JSON"
    else:
        return None
    return Decision(
        Action.MISCONFIGURED,
        status,
        f"the appliance answered {seen}: the bulk reanalysis API is not at this address; "
        "check --url (the appliance's base URL, no path) and --api",
    )


def decide_single(
    status: int, body: object | None, hash_value: str, text: str = "", *, attempts: int = 0
) -> Decision:
    """Decide what an answer of the single-sample endpoint means for the one hash sent."""
    early = _decide_whole_request(status, body, text)
    if early is not None:
        return early
    if isinstance(body, dict) and isinstance(body.get("analysis"), list):
        verdict = classify_item(body, status, attempts)
    elif 200 <= status < 300 or status in (400, 404, 405, 413):
        verdict = _verdict_from_code(status, _message_of(body), status, attempts)
    else:
        return Decision(Action.RETRY, status, f"unexpected HTTP {status}")
    return Decision(
        Action.DONE, status, verdict.reason or status_text(status), Verdicts({hash_value: verdict})
    )


def decide_status(
    status: int, body: object | None, text: str, hashes: Sequence[str]
) -> Decision:
    """Decide what an answer of POST /api/samples/status/ means for the hashes asked about.

    DONE carries in `held` the hashes the appliance holds. A hash counts as held unless the
    appliance says `not_found` for it: one it leaves out, or a lone hash refused as a whole
    request (400/405/413), is then still sent for reanalysis, whose answer gives it its true
    outcome, rather than being recorded `not_found` on a guess.
    """
    early = _decide_whole_request(status, body, text)
    if early is not None:
        return early
    results = body.get("results") if isinstance(body, Mapping) else None
    if isinstance(results, list) and 200 <= status < 300:
        wanted = set(hashes)
        absent: set[str] = set()
        for item in results:
            if not isinstance(item, dict) or item.get("status") != "not_found":
                continue
            value = item.get("hash_value")
            key = value if value in wanted else _hash_in_detail(item, "hash_value", wanted)
            if key is not None:
                absent.add(key)
        return Decision(Action.DONE, status, "answered", held=frozenset(wanted - absent))
    if status == 404 or (body is None and (200 <= status < 300 or status in (400, 405))):
        return Decision(
            Action.MISCONFIGURED,
            status,
            f"the appliance answered HTTP {status} to a status request, not the API's JSON: "
            "the sample status API is not at this address; check --url",
        )
    if 200 <= status < 300:
        return Decision(Action.RETRY, status, f"HTTP {status} without results")
    if status in (400, 405, 413) and len(hashes) == 1:
        return Decision(Action.DONE, status, status_text(status), held=frozenset(hashes))
    if status == 413:
        return Decision(Action.SHRINK, status, "request too large (413)")
    if status in (400, 405):
        return Decision(Action.SPLIT, status, f"whole request refused ({status})")
    return Decision(Action.RETRY, status, f"unexpected HTTP {status}")


def _decide_whole_request(status: int, body: object | None, text: str) -> Decision | None:
    """The decisions that do not depend on the hashes sent, or None."""
    if status in (401, 403):
        return Decision(
            Action.BAD_CREDENTIALS,
            status,
            f"the appliance refused the token (HTTP {status}): "
            "the token is wrong or lacks the right to reanalyze",
        )
    if status == 429:
        return Decision(Action.THROTTLED, status, "rate limited (429)")
    if status in RETRYABLE_STATUSES:
        return Decision(Action.RETRY, status, f"HTTP {status}")
    if status == 405 and _says_appliance_refuses(body, text):
        return Decision(
            Action.REFUSED, status, "the appliance says its type does not allow reanalysis (405)"
        )
    if 300 <= status < 400:
        return Decision(
            Action.MISCONFIGURED,
            status,
            f"the appliance answered with a redirect (HTTP {status}): "
            "check the URL (https://, host, no path)",
        )
    return None


def match_results(
    items: Sequence[Mapping[str, object]],
    hash_type: HashType,
    hashes: Sequence[str],
    *,
    attempts: int = 0,
    http_status: int | None = None,
) -> Verdicts:
    """One verdict per hash sent: results matched by `detail[<type>]` case-insensitively, in any
    order; a hash with no result is `not_found`. Results for hashes not sent are ignored."""
    if items and len(items) == len(hashes):
        in_order = _match_in_order(items, hash_type.value, hashes, attempts)
        if in_order is not None:
            return in_order
    wanted = set(hashes)
    found: dict[str, Verdict] = {}
    details: dict[str, dict[str, str]] = {}
    type_key = hash_type.value
    # Items of one answer mostly say the same thing: judge again only when an item differs from
    # the one before (list and dict equality run in C; judging builds objects), and share one
    # Verdict between the hashes judged alike. This loop runs once per hash of the job.
    last: tuple[object, object, object] | None = None
    verdict: Verdict | None = None
    for item in items:
        detail = item.get("detail")
        if not isinstance(detail, dict):
            continue
        key = detail.get(type_key)
        if key not in wanted:  # the appliance answers lowercase: that is the fast path
            key = _hash_in_detail(detail, type_key, wanted)
            if key is None:
                continue
        if key in found:
            continue
        saying = (item.get("analysis"), item.get("code"), item.get("message"))
        if verdict is None or saying != last:
            verdict, last = shared_verdict(item, attempts), saying
        found[key] = verdict
        details[key] = detail
    if len(found) < len(wanted):
        absent = Verdict(
            Status.NOT_FOUND, http_status, attempts, reason="absent from the bulk answer"
        )
        found = {h: found.get(h, absent) for h in hashes}
    return Verdicts(found, details)


def _match_in_order(
    items: Sequence[Mapping[str, object]], type_key: str, hashes: Sequence[str], attempts: int
) -> Verdicts | None:
    """The verdicts when result i is the hash sent i, each exactly as sent (lowercase): what
    appliances do. None if any result is not, for match_results to match by value.

    This runs once per hash of the job, so it works a list at a time (comprehensions and list
    comparisons run in C) and judges once per run of items that say the same thing.
    """
    details = [item.get("detail") for item in items]
    try:
        named = [detail[type_key] for detail in details]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):  # a detail that is no dict, or lacks the type
        return None
    if named != list(hashes):  # (a parsed JSON value indexed by a string is a dict)
        return None
    sayings = [(item.get("analysis"), item.get("code"), item.get("message")) for item in items]
    verdicts = judged_in_runs(items, sayings, lambda item: shared_verdict(item, attempts))
    return Verdicts.in_order(hashes, verdicts, details)  # type: ignore[arg-type]  # dicts


def judged_in_runs(
    items: Sequence[T], sayings: Sequence[object], judge: Callable[[T], Verdict]
) -> list[Verdict]:
    """One verdict per item, judged once per run of items whose sayings are equal (judging
    builds objects; comparing runs in C). Items of one answer mostly say the same thing."""
    if sayings.count(sayings[0]) == len(sayings):  # all alike: the usual case
        return [judge(items[0])] * len(items)
    verdicts = []
    last: object = None
    verdict: Verdict | None = None
    for item, saying in zip(items, sayings, strict=True):
        if verdict is None or saying != last:
            verdict, last = judge(item), saying
        verdicts.append(verdict)
    return verdicts


def shared_verdict(item: Mapping[str, object], attempts: int) -> Verdict:
    """The verdict of a result item, without its detail: shared by the items judged alike."""
    judgement = _judge(item, None)
    return Verdict(
        judgement.status, judgement.code, attempts, judgement.analyses, {}, judgement.reason
    )


def classify_item(
    item: Mapping[str, object], fallback_code: int | None, attempts: int = 0
) -> Verdict:
    """The verdict of one result item (bulk) or of a whole single-sample answer."""
    return _judge(item, fallback_code).verdict(attempts, _detail_of(item))


@dataclass(frozen=True, slots=True)
class _Judgement:
    """A verdict without the per-sample parts (attempts, detail)."""

    status: Status
    code: int | None
    analyses: tuple[AnalysisResult, ...]
    reason: str | None

    def verdict(self, attempts: int, detail: dict[str, str]) -> Verdict:
        return Verdict(self.status, self.code, attempts, self.analyses, detail, self.reason)


def _judge(item: Mapping[str, object], fallback_code: int | None) -> _Judgement:
    analyses = _analyses_of(item)
    item_code = _int_or_none(item.get("code"))
    code = item_code if item_code is not None else fallback_code
    codes = [a.code for a in analyses if a.code is not None]
    if not codes:
        verdict = _verdict_from_code(code, _str_or_none(item.get("message")), fallback_code)
        return _Judgement(verdict.status, code, analyses, verdict.reason)
    accepted = [c for c in codes if c in ACCEPTED_CODES]
    refused = [a for a in analyses if a.code is not None and a.code not in ACCEPTED_CODES]
    if accepted and refused:
        reason = "; ".join(f"{a.name}: {a.code} {a.message or ''}".rstrip() for a in refused)
        return _Judgement(Status.PARTIAL, code, analyses, reason)
    if accepted:
        status = Status.QUEUED if 201 in accepted else Status.ALREADY_QUEUED
        return _Judgement(status, code, analyses, None)
    # Every analysis refused: the item's own code says why if present, else the first refusal.
    deciding = code if code is not None and code not in ACCEPTED_CODES else refused[0].code
    message = _str_or_none(item.get("message")) or refused[0].message
    verdict = _verdict_from_code(deciding, message, fallback_code)
    return _Judgement(verdict.status, code, analyses, verdict.reason)


def _verdict_from_code(
    code: int | None, message: str | None, http_status: int | None, attempts: int = 0
) -> Verdict:
    status = {
        201: Status.QUEUED,
        200: Status.ALREADY_QUEUED,
        404: Status.NOT_FOUND,
        405: Status.NOT_ALLOWED,
        400: Status.INVALID,
    }.get(code if code is not None else -1, Status.FAILED)
    reason: str | None = None
    if status is Status.FAILED:
        reason = (
            f"unrecognized answer (code {code})"
            if code != 413
            else ("the appliance refused even a one-hash request as too large (413)")
        )
    elif not status.accepted:
        reason = message or status_text(code)
    return Verdict(status, http_status, attempts, reason=reason)


def status_text(code: int | None) -> str:
    return {
        400: "not a valid hash for the appliance (400)",
        404: "not found on the appliance (404)",
        405: "reanalysis not allowed for this sample (405)",
        413: "request too large (413)",
    }.get(code if code is not None else -1, f"HTTP {code}")


def _result_items(body: object | None) -> list[Mapping[str, object]] | None:
    """The result items of a bulk answer, or None if it has none. A lone item at the top level
    (some servers answer a one-hash bulk request that way) counts as one result."""
    if not isinstance(body, Mapping):
        return None
    results = body.get("results")
    if isinstance(results, list):
        return [r for r in results if isinstance(r, dict)]
    if isinstance(body.get("detail"), dict) and isinstance(body.get("analysis"), list):
        return [body]
    return None


def _hash_in_detail(detail: dict[str, object], type_key: str, wanted: set[str]) -> str | None:
    """The hash sent that `detail` names, in any case and under any key, or None."""
    value = detail.get(type_key)
    if isinstance(value, str) and value.strip().lower() in wanted:
        return value.strip().lower()
    # Tolerate a detail keyed differently (e.g. upper-case keys): any value that matches.
    for other in detail.values():
        if isinstance(other, str) and other.strip().lower() in wanted:
            return other.strip().lower()
    return None


def _analyses_of(item: Mapping[str, object]) -> tuple[AnalysisResult, ...]:
    raw = item.get("analysis")
    if not isinstance(raw, list):
        return ()
    return tuple(
        AnalysisResult(
            str(a.get("name", "")), _int_or_none(a.get("code")), _str_or_none(a.get("message"))
        )
        for a in raw
        if isinstance(a, dict)
    )


def _detail_of(item: Mapping[str, object]) -> dict[str, str]:
    """The `detail` object as the appliance sent it (its values are hash strings)."""
    detail = item.get("detail")
    return detail if isinstance(detail, dict) else {}


def _says_appliance_refuses(body: object | None, text: str) -> bool:
    haystack = (text or (json.dumps(body) if body is not None else "")).lower()
    return any(phrase in haystack for phrase in _APPLIANCE_REFUSES)


def _message_of(body: object | None) -> str | None:
    if isinstance(body, Mapping):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
