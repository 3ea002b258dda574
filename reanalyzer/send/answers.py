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

from reanalyzer.core.hashes import HEX_DIGITS, HashType
from reanalyzer.core.outcomes import AnalysisResult, Status, Verdict, Verdicts

ACCEPTED_CODES = frozenset({200, 201})
RETRYABLE_STATUSES = frozenset({408, 500, 502, 503, 504})
# What a web server that is not the appliance answers to the API's POSTs (python3 -m http.server
# answers 501): the request was understood and will never be served here.
NOT_THE_API_STATUSES = {501: "Not Implemented", 505: "HTTP Version Not Supported"}
# Phrases in a 405's body that mean no sample will ever be reanalyzed on this appliance, as opposed
# to "Reanalysis not allowed for extracted samples." which is about one sample of the request.
_APPLIANCE_REFUSES = ("type of appliance", "appliance type")
# Phrases in a 405's message that mean the appliance is not set up for the analysis asked, not
# that the sample may not be reanalyzed: "Appliance is not connected to Spectra Intelligence.",
# "Sandbox integration is not configured." (shared/api/NOTES.md).
_NOT_CONFIGURED = ("not connected to spectra intelligence", "is not configured")
T = TypeVar("T")


class Action(enum.StrEnum):
    DONE = "done"  # every hash sent has its verdict in `Decision.verdicts`
    SPLIT = "split"  # the whole request was refused for one of its samples: send it in halves
    SHRINK = "shrink"  # 413: split, and keep requests smaller for the rest of the job
    RETRY = "retry"  # transient: send the request (or its `unsettled` part) again after a backoff
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
    # RETRY of part of the request: the hashes the answer did not clearly answer, to send again.
    # `verdicts` (bulk, single) or `held` (status) then settle the hashes it did answer, which
    # keep those outcomes. Empty: a RETRY is of the whole request.
    unsettled: tuple[str, ...] = ()
    # The body was the API's JSON, read as such: once a run has had one, a body that is not the
    # API's is a bad moment (a proxy's page), no longer a wrong --url.
    in_api_shape: bool = False


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
    answered_before: bool = False,
    content_type: str | None = None,
) -> Decision:
    """Decide what a bulk answer (v1 or v2) means for the hashes sent, all of `hash_type`.

    `body` is the parsed JSON (None if unparseable) and `text` the raw body, searched for the
    appliance-type refusal. `hashes` are lowercase, as sent; `attempts` goes into the verdicts.
    `answered_before`: this run already had an answer in the API's shape (`in_api_shape`), so
    a body that is not the API's is retried instead of stopping the job as a wrong URL;
    `content_type` (the answer's) then goes into the reason.
    """
    seen = _Seen(status, body, text, content_type) if answered_before else None
    early = _decide_whole_request(status, body, text, seen)
    if early is not None:
        return early
    items = _result_items(body)
    if items is not None:
        read = read_results(items, hash_type, hashes, attempts=attempts, http_status=status)
        in_shape = bool(read.verdicts) or not read.unsettled
        if not read.unsettled:
            return Decision(Action.DONE, status, "answered", read.verdicts, in_api_shape=True)
        return Decision(
            Action.RETRY,
            status,
            f"HTTP {status} with {read.why}: {len(read.unsettled)} of {len(hashes)} hashes "
            "not clearly answered",
            read.verdicts,
            unsettled=read.unsettled,
            in_api_shape=in_shape,
        )
    wrong_place = _not_the_bulk_api(status, body, seen)
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
    if status == 405 and about_configuration(_message_of(body)):
        # About the appliance, not one sample: splitting would only ask again for each.
        verdict = _verdict_from_code(status, _message_of(body), status, attempts)
        return Decision(
            Action.DONE,
            status,
            verdict.reason or status_text(status),
            Verdicts(dict.fromkeys(hashes, verdict)),
        )
    if status in (400, 405):
        return Decision(Action.SPLIT, status, f"whole request refused ({status})")
    return Decision(Action.RETRY, status, f"unexpected HTTP {status}")


@dataclass(frozen=True, slots=True)
class _Seen:
    """An answer as it can be described to a person: given once the run has been answered in
    the API's shape, when a body that is not the API's is a bad moment, not a wrong URL."""

    status: int
    body: object | None
    text: str
    content_type: str | None

    def describe(self) -> str:
        """Status, content type and the start of the body (never a header)."""
        raw = self.text or (json.dumps(self.body) if self.body is not None else "")
        return (
            f"HTTP {self.status}, {self.content_type or 'no content type'}, "
            f"body {printable_start(raw)!r}"
        )


def printable_start(text: str, limit: int = 100) -> str:
    """The first `limit` printable characters of `text`, its whitespace runs as one space."""
    return "".join(ch for ch in " ".join(text.split()) if ch.isprintable())[:limit]


def _not_the_bulk_api(status: int, body: object | None, seen: _Seen | None) -> Decision | None:
    """MISCONFIGURED when the answer cannot have come from the bulk endpoint, else None.

    The bulk endpoint answers 200/201/400/405/413 for a whole request, in JSON, and reports a
    sample it does not hold per item (or leaves it out): a whole-request 404 means the URL or
    the API version is wrong. So does a 2xx/400/405 that is not JSON (a web UI's or a proxy's
    HTML page): splitting it would only turn every hash into a wrong `not_found` or `invalid`.
    A 413 may well be a proxy's HTML page about its body limit, so that one is still believed.
    Once the run has been answered in the API's shape (`seen` given), the API is at this
    address: such an answer is a proxy's or a login page's moment, retried (RETRY).
    """
    if status == 404:
        what = "a 404 for the whole bulk request"
    elif body is None and (200 <= status < 300 or status in (400, 405)):
        what = f"HTTP {status} with a body that is not the API's JSON"
    else:
        return None
    if seen is not None:
        return _mid_job(status, "a bulk request", seen)
    return Decision(
        Action.MISCONFIGURED,
        status,
        f"the appliance answered {what}: the bulk reanalysis API is not at this address; "
        "check --url (the appliance's base URL, no path) and --api",
    )


def _mid_job(status: int, request: str, seen: _Seen) -> Decision:
    """RETRY of an answer that is not the API's, in a run the API has already answered."""
    return Decision(
        Action.RETRY,
        status,
        f"the appliance answered {request} with what is not the API's answer "
        f"({seen.describe()}), after answering in the API's shape earlier in this run",
    )


def decide_single(
    status: int,
    body: object | None,
    hash_value: str,
    text: str = "",
    *,
    attempts: int = 0,
    answered_before: bool = False,
    content_type: str | None = None,
) -> Decision:
    """Decide what an answer of the single-sample endpoint means for the one hash sent.

    An answer in the API's shape (an `analysis` list) whose codes cannot be read is retried,
    never given a status. `answered_before` and `content_type`: as for `decide_bulk`."""
    seen = _Seen(status, body, text, content_type) if answered_before else None
    early = _decide_whole_request(status, body, text, seen)
    if early is not None:
        return early
    if isinstance(body, dict) and isinstance(body.get("analysis"), list):
        problem = unreadable(body)
        if problem is not None:
            return Decision(Action.RETRY, status, f"HTTP {status} with {problem}")
        verdict = classify_item(body, status, attempts)
        return Decision(
            Action.DONE,
            status,
            verdict.reason or status_text(status),
            Verdicts({hash_value: verdict}),
            in_api_shape=True,
        )
    if 200 <= status < 300 or status in (400, 404, 405, 413):
        verdict = _verdict_from_code(status, _message_of(body), status, attempts)
    else:
        return Decision(Action.RETRY, status, f"unexpected HTTP {status}")
    return Decision(
        Action.DONE, status, verdict.reason or status_text(status), Verdicts({hash_value: verdict})
    )


def decide_status(
    status: int,
    body: object | None,
    text: str,
    hashes: Sequence[str],
    *,
    answered_before: bool = False,
    content_type: str | None = None,
) -> Decision:
    """Decide what an answer of POST /api/samples/status/ means for the hashes asked about.

    DONE carries in `held` the hashes the appliance holds. A hash counts as held unless the
    appliance says `not_found` for it: one it leaves out, or a lone hash refused as a whole
    request (400/405/413), is then still sent for reanalysis, whose answer gives it its true
    outcome, rather than being recorded `not_found` on a guess. An answer with a result that
    cannot be read (not an object, no `status` string, no hash) says nothing sure of the hashes
    it does not clearly answer: they are asked again (RETRY with `unsettled`), never "not held".
    `answered_before` and `content_type`: as for `decide_bulk`.
    """
    seen = _Seen(status, body, text, content_type) if answered_before else None
    early = _decide_whole_request(status, body, text, seen)
    if early is not None:
        return early
    results = body.get("results") if isinstance(body, Mapping) else None
    if isinstance(results, list) and 200 <= status < 300:
        return _read_status_results(status, results, hashes)
    if status == 404 or (body is None and (200 <= status < 300 or status in (400, 405))):
        if seen is not None:
            return _mid_job(status, "a status request", seen)
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


def _read_status_results(status: int, results: list[object], hashes: Sequence[str]) -> Decision:
    wanted = set(hashes)
    lengths = {len(h) for h in hashes}
    said_held: set[str] = set()
    absent: set[str] = set()
    why: str | None = None
    for item in results:
        if not isinstance(item, dict):
            why = why or "a status result that is not an object"
            continue
        value = item.get("hash_value")
        key = value if value in wanted else _hash_in_detail(item, "hash_value", wanted)
        if key is None:
            if not _is_hash_of(value, lengths):
                why = why or "a status result that names no hash of the type sent"
            continue  # a result for a hash not asked about (or unreadable): it decides nothing
        state = item.get("status")
        if not isinstance(state, str):
            why = why or "a status result without a status"
            continue
        (absent if state == "not_found" else said_held).add(key)
    if why is not None:
        unsettled = tuple(h for h in hashes if h not in said_held and h not in absent)
        if unsettled:
            return Decision(
                Action.RETRY,
                status,
                f"HTTP {status} with {why}: {len(unsettled)} of {len(hashes)} hashes "
                "not clearly answered",
                held=frozenset(said_held - absent),
                unsettled=unsettled,
                in_api_shape=bool(said_held or absent),
            )
    return Decision(
        Action.DONE, status, "answered", held=frozenset(wanted - absent), in_api_shape=True
    )


def _decide_whole_request(
    status: int, body: object | None, text: str, seen: _Seen | None
) -> Decision | None:
    """The decisions that do not depend on the hashes sent, or None. A redirect is never
    followed (it would carry the token): once the run has been answered in the API's shape
    (`seen` given) it is a login page's or a proxy's moment, retried; before, a wrong URL."""
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
    refused_setting = _refused_setting(status, body)
    if refused_setting is not None:
        return Decision(Action.MISCONFIGURED, status, refused_setting)
    if status == 405 and _says_appliance_refuses(body, text):
        return Decision(
            Action.REFUSED, status, "the appliance says its type does not allow reanalysis (405)"
        )
    if status in NOT_THE_API_STATUSES:
        # An ordinary web server's answer to a POST it does not implement: no outage to wait out.
        if seen is not None:
            return _mid_job(status, "a request", seen)
        return Decision(
            Action.MISCONFIGURED,
            status,
            f"the server answered HTTP {status} ({NOT_THE_API_STATUSES[status]}): it is not the "
            "reanalysis API; check --url (the appliance's base URL, no path)",
        )
    if 300 <= status < 400:
        if seen is not None:
            return _mid_job(status, "a request", seen)
        return Decision(
            Action.MISCONFIGURED,
            status,
            f"the appliance answered with a redirect (HTTP {status}): "
            "check the URL (https://, host, no path)",
        )
    return None


# Fields of a reanalysis request that name no sample: a 400 about them alone is about the
# settings (an analysis name this appliance does not take), the same for every request.
_SETTING_FIELDS = {"analysis": "--analysis", "rl_cloud_sandbox_platform": "--sandbox-platform"}


def _refused_setting(status: int, body: object | None) -> str | None:
    """Why a 400 refuses the request's settings rather than its samples, or None. Splitting it
    would only record every hash `invalid` ("not a valid hash"), which none of them is."""
    detail = body.get("detail") if status == 400 and isinstance(body, Mapping) else None
    if not isinstance(detail, Mapping) or not detail or not set(detail) <= set(_SETTING_FIELDS):
        return None
    said = "; ".join(f"{field}: {printable_start(_joined(detail[field]), 200)}" for field in detail)
    flags = " and ".join(_SETTING_FIELDS[field] for field in detail)
    return f"the appliance refused the request's {said} (HTTP 400): check {flags}"


@dataclass(frozen=True, slots=True)
class ReadResults:
    """What the result items of one bulk answer settle."""

    verdicts: Verdicts  # the hashes the answer clearly answers (all, when `unsettled` is empty)
    unsettled: tuple[str, ...] = ()  # hashes sent that it does not clearly answer, in order sent
    why: str = ""  # the first thing that could not be read, when `unsettled` is not empty


def read_results(
    items: Sequence[object],
    hash_type: HashType,
    hashes: Sequence[str],
    *,
    attempts: int = 0,
    http_status: int | None = None,
) -> ReadResults:
    """The verdicts the result items settle: matched by `detail[<type>]` case-insensitively, in
    any order; results for hashes not sent are ignored.

    A hash is `not_found` only on positive evidence: an item saying 404 for it, or its absence
    from an answer every item of which was read and attributed. If any item cannot be (not an
    object; no `detail`, or one that names no hash of `hash_type`; codes that are not integers;
    no code at all), the hashes the others do not answer are `unsettled`: to be sent again.
    """
    if items and len(items) == len(hashes):
        in_order = _match_in_order(items, hash_type.value, hashes, attempts)
        if in_order is not None:
            return ReadResults(in_order)
    wanted = set(hashes)
    found: dict[str, Verdict] = {}
    details: dict[str, dict[str, str]] = {}
    type_key = hash_type.value
    why: str | None = None
    # Items of one answer mostly say the same thing: judge again only when an item differs from
    # the one before (list and dict equality run in C; judging builds objects), and share one
    # Verdict between the hashes judged alike. This loop runs once per hash of the job.
    last: tuple[object, object, object] | None = None
    verdict: Verdict | None = None
    for item in items:
        detail = item.get("detail") if isinstance(item, dict) else None
        if not isinstance(detail, dict):
            why = why or (
                "a result without a detail"
                if isinstance(item, dict)
                else "a result that is not an object"
            )
            continue
        assert isinstance(item, dict)
        key = detail.get(type_key)
        if key not in wanted:  # the appliance answers lowercase: that is the fast path
            key = _hash_in_detail(detail, type_key, wanted)
            if key is None:
                if not _names_a_hash(detail, hash_type):
                    why = why or f"a result whose detail names no {type_key}"
                continue  # a result for a hash never sent: it settles nothing
        if key in found:
            continue
        saying = (item.get("analysis"), item.get("code"), item.get("message"))
        if verdict is None or saying != last:
            problem = unreadable(item)
            if problem is not None:
                why = why or problem
                continue
            verdict, last = shared_verdict(item, attempts), saying
        found[key] = verdict
        details[key] = detail
    if why is not None:
        unsettled = tuple(h for h in hashes if h not in found)
        if unsettled:
            return ReadResults(Verdicts(found, details), unsettled, why)
    if len(found) < len(wanted):
        absent = Verdict(
            Status.NOT_FOUND, http_status, attempts, reason="absent from the bulk answer"
        )
        found = {h: found.get(h, absent) for h in hashes}
    return ReadResults(Verdicts(found, details))


def unreadable(item: object) -> str | None:
    """Why a result item (or a single-sample answer) cannot be read into a status, or None.

    Its top-level `code` may be absent (deprecated), but not other than an integer; every
    entry of its `analysis` list must be an object with an integer code; and it must carry
    some code. A code as a string, say, is a server that is not the appliance or a broken one:
    guessing what it meant is how samples the appliance queued ended `not_found`.
    """
    if not isinstance(item, dict):
        return "a result that is not an object"
    code = item.get("code")
    if code is not None and type(code) is not int:
        return "a result code that is not an integer"
    analyses = item.get("analysis")
    if analyses is not None:
        if not isinstance(analyses, list):
            return "an analysis list that is not a list"
        for entry in analyses:
            if not isinstance(entry, dict) or type(entry.get("code")) is not int:
                return "an analysis without an integer code"
    if code is None and not analyses:
        return "a result without any code"
    return None


class _Unreadable(Exception):  # a state: the in-order shortcut steps aside
    """An item of the answer cannot be read: the answer is read item by item instead."""


def _judge_readable(item: Mapping[str, object], attempts: int) -> Verdict:
    if unreadable(item) is not None:
        raise _Unreadable
    return shared_verdict(item, attempts)


def _match_in_order(
    items: Sequence[object], type_key: str, hashes: Sequence[str], attempts: int
) -> Verdicts | None:
    """The verdicts when result i is the hash sent i, each exactly as sent (lowercase), and
    every result readable: what appliances do. None if any result is not, for read_results to
    read item by item.

    This runs once per hash of the job, so it works a list at a time (comprehensions and list
    comparisons run in C) and judges once per run of items that say the same thing.
    """
    try:
        details = [item.get("detail") for item in items]  # type: ignore[attr-defined]
        named = [detail[type_key] for detail in details]
    except (AttributeError, KeyError, TypeError, IndexError):  # not a dict, or lacks the type
        return None
    if named != list(hashes):  # (a parsed JSON value indexed by a string is a dict)
        return None
    results: Sequence[Mapping[str, object]] = items  # type: ignore[assignment]  # dicts, above
    sayings = [(i.get("analysis"), i.get("code"), i.get("message")) for i in results]
    try:
        verdicts = judged_in_runs(results, sayings, lambda i: _judge_readable(i, attempts))
    except _Unreadable:
        return None
    return Verdicts.in_order(hashes, verdicts, details)


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
    if status is Status.NOT_ALLOWED and about_configuration(message):
        status = Status.NOT_CONFIGURED
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


def about_configuration(message: str | None) -> bool:
    """Whether a 405's message refuses for the appliance's configuration, not the sample."""
    lowered = (message or "").lower()
    return any(phrase in lowered for phrase in _NOT_CONFIGURED)


def status_text(code: int | None) -> str:
    return {
        400: "not a valid hash for the appliance (400)",
        404: "not found on the appliance (404)",
        405: "reanalysis not allowed for this sample (405)",
        413: "request too large (413)",
    }.get(code if code is not None else -1, f"HTTP {code}")


def _result_items(body: object | None) -> list[object] | None:
    """The result items of a bulk answer, or None if it has none. A lone item at the top level
    (some servers answer a one-hash bulk request that way) counts as one result. Items that
    are not objects are kept: `read_results` must know the answer had them."""
    if not isinstance(body, Mapping):
        return None
    results = body.get("results")
    if isinstance(results, list):
        return results
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


def _names_a_hash(detail: dict[str, object], hash_type: HashType) -> bool:
    """Whether `detail` names some hash of `hash_type` (sent or not) under its type's key."""
    return _is_hash_of(detail.get(hash_type.value), {hash_type.hex_length})


def _is_hash_of(value: object, lengths: set[int]) -> bool:
    """Whether `value` is a hex string of one of these lengths (any case, stripped)."""
    if not isinstance(value, str):
        return False
    value = value.strip().lower()
    return len(value) in lengths and HEX_DIGITS.issuperset(value)


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


def _joined(value: object) -> str:
    """A validation error's messages (DRF gives a list per field) as one text."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


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
