"""The pure reading of the appliance's answers: every status and body shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import AnalysisResult, Status
from reanalyzer.send.answers import (
    Action,
    classify_item,
    decide_bulk,
    decide_single,
    decide_status,
    parse_body,
    read_results,
)

H1 = "a" * 40
H2 = "b" * 40
H3 = "c" * 40


def item(hash_value: str, *analyses: tuple[str, int, str], code: int | None = None) -> Any:
    """A bulk result item as the appliance writes it (upper-case to test the matching)."""
    body: dict[str, Any] = {
        "analysis": [{"name": n, "code": c, "message": m} for n, c, m in analyses],
        "detail": {"sha1": hash_value.upper(), "md5": "0" * 32, "imphash": "x"},
        "unknown_field": [1, 2],
    }
    if code is not None:
        body["code"] = code
        body["message"] = "deprecated"
    return body


QUEUED = ("cloud", 201, "Sample is queued for analysis."), ("core", 201, "Sent to core.")
ALREADY = ("cloud", 200, "Already queued."), ("core", 200, "Already queued.")


def test_bulk_results_are_matched_by_detail_in_any_order_case_insensitively() -> None:
    """Results come in any order with upper-case hashes and still land on the right hash."""
    body = {"results": [item(H2, *ALREADY, code=200), item(H1, *QUEUED, code=201)]}
    decision = decide_bulk(201, body, HashType.SHA1, [H1, H2])
    assert decision.action is Action.DONE
    assert decision.verdicts[H1].status is Status.QUEUED
    assert decision.verdicts[H2].status is Status.ALREADY_QUEUED
    assert decision.verdicts[H1].detail["sha1"] == H1.upper()
    assert decision.verdicts[H1].analyses[0] == AnalysisResult("cloud", 201, QUEUED[0][2])


def test_per_analysis_codes_win_over_the_deprecated_top_level_code() -> None:
    """An item saying 200 at the top but 201 per analysis was queued now."""
    verdict = classify_item(item(H1, *QUEUED, code=200), None)
    assert verdict.status is Status.QUEUED


def test_missing_top_level_code_and_message_are_tolerated() -> None:
    """Without top-level code/message the analyses alone decide."""
    body = {"results": [item(H1, *ALREADY)]}
    assert decide_bulk(200, body, HashType.SHA1, [H1]).verdicts[H1].status is Status.ALREADY_QUEUED


def test_partial_keeps_every_analysis_and_names_the_refused_ones() -> None:
    """Core accepted beside a refused sandbox is partial, with all three analyses kept."""
    refused = ("rl_cloud_sandbox", 405, "Sandbox integration is not configured.")
    verdict = classify_item(item(H1, QUEUED[0], QUEUED[1], refused, code=201), None)
    assert verdict.status is Status.PARTIAL
    assert [a.name for a in verdict.analyses] == ["cloud", "core", "rl_cloud_sandbox"]
    assert verdict.analyses[2] == AnalysisResult(*refused)
    assert verdict.reason is not None
    assert "Sandbox integration" in verdict.reason


@pytest.mark.parametrize(
    ("code", "status"),
    [(404, Status.NOT_FOUND), (405, Status.NOT_ALLOWED), (400, Status.INVALID)],
)
def test_refused_items_get_their_own_status(code: int, status: Status) -> None:
    """A 404/405/400 item maps to not_found/not_allowed/invalid, with analyses or without."""
    with_analyses = item(H1, ("core", code, "no"), code=code)
    without = {"code": code, "message": "no", "detail": {"sha1": H1}}
    for it in (with_analyses, without):
        decision = decide_bulk(200, {"results": [it]}, HashType.SHA1, [H1])
        assert decision.verdicts[H1].status is status
        assert decision.verdicts[H1].reason


def test_all_analyses_refused_without_item_code_uses_the_first_refusal() -> None:
    """Only `cloud` asked for and the appliance not connected: refused for the appliance's
    configuration (not_configured, no longer the sample's not_allowed), with the message."""
    refused = ("cloud", 405, "Not connected to Spectra Intelligence.")
    verdict = classify_item(item(H1, refused), None)
    assert verdict.status is Status.NOT_CONFIGURED
    assert verdict.reason == "Not connected to Spectra Intelligence."


@pytest.mark.parametrize("message", ["Appliance is not connected to Spectra Intelligence.",
                                     "Sandbox integration is not configured."])
def test_a_refusal_for_the_appliances_configuration_is_told_apart(message: str) -> None:
    """A 405 whose message is about the appliance's set-up is not_configured, per analysis,
    per item (v1, no analysis list) and for a whole request (every hash, without splitting);
    an extracted sample's 405 stays not_allowed."""
    assert classify_item(item(H1, ("cuckoo", 405, message)), None).status is (
        Status.NOT_CONFIGURED)
    v1_item = {"code": 405, "message": message, "detail": {"sha1": H1}}
    assert decide_bulk(200, {"results": [v1_item]}, HashType.SHA1, [H1]).verdicts[H1].status is (
        Status.NOT_CONFIGURED)
    whole = decide_bulk(405, {"code": 405, "message": message}, HashType.SHA1, [H1, H2])
    assert whole.action is Action.DONE
    assert {v.status for v in whole.verdicts.values()} == {Status.NOT_CONFIGURED}
    extracted = ("core", 405, "Reanalysis not allowed for extracted samples.")
    assert classify_item(item(H1, extracted), None).status is Status.NOT_ALLOWED


def test_hash_absent_from_results_is_not_found_and_strangers_are_ignored() -> None:
    """An omitted hash is not_found; a result for a hash never sent is ignored."""
    items = [item(H1, *QUEUED), item(H3, *QUEUED)]
    verdicts = read_results(items, HashType.SHA1, [H1, H2]).verdicts
    assert set(verdicts) == {H1, H2}
    assert verdicts[H2].status is Status.NOT_FOUND


def test_detail_without_the_type_key_still_matches_by_any_value() -> None:
    """A detail keyed in upper case is matched through its values."""
    it = {"analysis": [{"name": "core", "code": 201}], "detail": {"SHA1": H1.upper()}}
    assert read_results([it], HashType.SHA1, [H1]).verdicts[H1].status is Status.QUEUED


def test_item_without_codes_at_all_is_failed_not_guessed() -> None:
    """An item with neither analysis codes nor a code is failed (retried by a later run)."""
    verdict = classify_item({"detail": {"sha1": H1}}, None)
    assert verdict.status is Status.FAILED


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_refused(status: int) -> None:
    """401 and 403 stop the job with words about the token."""
    decision = decide_bulk(status, {"detail": "Invalid token."}, HashType.SHA1, [H1, H2])
    assert decision.action is Action.BAD_CREDENTIALS
    assert "token" in decision.reason


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_statuses_are_retried_even_with_html(status: int) -> None:
    """Gateway and server errors, JSON or HTML, are retried."""
    html = "<html><body><h1>503 Service Unavailable</h1></body></html>"
    assert decide_bulk(status, parse_body(html.encode()), HashType.SHA1, [H1], html).action is (
        Action.RETRY
    )


def test_429_is_throttled() -> None:
    """429 asks the whole job to slow down."""
    assert decide_bulk(429, None, HashType.SHA1, [H1]).action is Action.THROTTLED
    assert decide_single(429, None, H1).action is Action.THROTTLED


def test_405_for_the_appliance_type_stops_the_job() -> None:
    """The 405 whose message names the appliance type is refused for good, bulk and single."""
    body = {"code": 405, "message": "Not allowed for this type of appliance."}
    assert decide_bulk(405, body, HashType.SHA1, [H1, H2]).action is Action.REFUSED
    assert decide_single(405, body, H1, json.dumps(body)).action is Action.REFUSED


@pytest.mark.parametrize("status", [400, 405])
def test_whole_request_refusal_splits_a_bulk_request(status: int) -> None:
    """400 and 405 (extracted) on several hashes split the request."""
    body = {"message": "Reanalysis not allowed for extracted samples."}
    assert decide_bulk(status, body, HashType.SHA1, [H1, H2]).action is Action.SPLIT


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (400, Status.INVALID),
        (405, Status.NOT_ALLOWED),
        (413, Status.FAILED),
    ],
)
def test_whole_request_refusal_of_one_hash_is_its_outcome(status: int, verdict: Status) -> None:
    """Split down to one hash, the refusal becomes that hash's own outcome."""
    decision = decide_bulk(status, {"message": "x"}, HashType.SHA1, [H1])
    assert decision.action is Action.DONE
    assert decision.verdicts[H1].status is verdict
    assert decision.verdicts[H1].http_status == status


def test_413_shrinks() -> None:
    """413 on several hashes shrinks the request size for the job."""
    assert decide_bulk(413, None, HashType.SHA1, [H1, H2]).action is Action.SHRINK


def test_2xx_json_without_results_is_retried_not_dropped() -> None:
    """A 200 with a result-less JSON body is retried (then failed), never lost."""
    assert decide_bulk(200, {"ok": True}, HashType.SHA1, [H1]).action is Action.RETRY


@pytest.mark.parametrize("hashes", [[H1], [H1, H2]])
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"detail": "Not found."}),
        (404, None),
        (200, None),
        (201, None),
        (400, None),
        (405, None),
    ],
)
def test_bulk_answer_from_elsewhere_than_the_api_stops_the_job(
    status: int, body: Any, hashes: list[str]
) -> None:
    """A whole-request 404, or an HTML page where the API answers JSON, means a wrong URL or API
    version: the job stops instead of recording every hash not_found or invalid."""
    decision = decide_bulk(status, body, HashType.SHA1, hashes, "<html>Not Found</html>")
    assert decision.action is Action.MISCONFIGURED
    assert "--url" in decision.reason
    assert not decision.verdicts


@pytest.mark.parametrize("status", [501, 505])
def test_a_web_servers_not_implemented_is_not_the_api(status: int) -> None:
    """501 and 505 are what a web server that is not the appliance answers: the job stops as at
    a wrong --url (bulk, single and status alike), instead of waiting out an outage."""
    html = "<html>Not Implemented</html>"
    decisions = [decide_bulk(status, None, HashType.SHA1, [H1, H2], html),
                 decide_single(status, None, H1, html),
                 decide_status(status, None, html, [H1])]
    for decision in decisions:
        assert decision.action is Action.MISCONFIGURED
        assert "not the reanalysis API" in decision.reason


def test_an_html_413_still_shrinks() -> None:
    """A proxy's HTML 413 is a real size limit: the request is shrunk, not the job stopped."""
    assert decide_bulk(413, None, HashType.SHA1, [H1, H2], "<html/>").action is Action.SHRINK


def test_lone_item_at_top_level_counts_as_a_result() -> None:
    """A bulk of one answered in the single-sample shape is understood."""
    decision = decide_bulk(201, item(H1, *QUEUED, code=201), HashType.SHA1, [H1])
    assert decision.verdicts[H1].status is Status.QUEUED


def test_redirect_is_misconfiguration() -> None:
    """A redirect means the URL is wrong: stop instead of following it with the token."""
    assert decide_bulk(302, None, HashType.SHA1, [H1]).action is Action.MISCONFIGURED


def test_unknown_client_error_is_retried() -> None:
    """An unexpected 409 is retried (and failed in the end) rather than misread."""
    assert decide_bulk(409, None, HashType.SHA1, [H1]).action is Action.RETRY


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, {"code": 201, "analysis": [{"name": "core", "code": 201}]}, Status.QUEUED),
        (200, {"analysis": [{"name": "core", "code": 200}]}, Status.ALREADY_QUEUED),
        (201, None, Status.QUEUED),
        (404, {"detail": "Not found."}, Status.NOT_FOUND),
        (404, None, Status.NOT_FOUND),
        (405, {"message": "Reanalysis not allowed for extracted samples."}, Status.NOT_ALLOWED),
        (400, {"message": "Validation error."}, Status.INVALID),
    ],
)
def test_single_sample_answers(status: int, body: Any, expected: Status) -> None:
    """The single-sample endpoint's answers map to the same statuses as bulk items."""
    decision = decide_single(status, body, H1)
    assert decision.action is Action.DONE
    assert decision.verdicts[H1].status is expected


def test_single_sample_5xx_is_retried() -> None:
    """A 503 on the single endpoint is retried."""
    assert decide_single(503, None, H1, "<html/>").action is Action.RETRY


def test_parse_body_tolerates_garbage() -> None:
    """Non-JSON and non-UTF-8 bodies parse to None."""
    assert parse_body(b"<html>") is None
    assert parse_body(b"\xff\xfe\x00") is None
    assert parse_body(b"") is None
    assert parse_body(b'{"a": 1}') == {"a": 1}


hash_lists = st.lists(st.text("0123456789abcdef", min_size=40, max_size=40), unique=True)


@given(hash_lists, st.sets(st.integers(min_value=0, max_value=200)))
def test_every_hash_sent_gets_exactly_one_verdict(hashes: list[str], answered: set[int]) -> None:
    """Whatever subset the appliance answers, every hash sent gets one verdict."""
    items = [item(h, *QUEUED) for i, h in enumerate(hashes) if i in answered]
    verdicts = read_results(items, HashType.SHA1, hashes).verdicts
    assert list(verdicts) == hashes


def lower_item(hash_value: str, analyses: tuple[tuple[str, int, str], ...]) -> Any:
    """A result item as appliances write them: the hash lowercase, as sent."""
    return {"analysis": [{"name": n, "code": c, "message": m} for n, c, m in analyses],
            "detail": {"sha1": hash_value, "md5": "0" * 32}}


SAYINGS = [QUEUED, ALREADY, (("cloud", 201, "Queued."), ("core", 405, "Not allowed.")),
           (("core", 404, "Not found."),)]


@given(hash_lists.filter(bool),
       st.lists(st.integers(0, len(SAYINGS) - 1), min_size=201, max_size=201), st.randoms())
def test_results_in_the_order_sent_read_as_results_in_any_order(
    hashes: list[str], sayings: list[int], rand: Any
) -> None:
    """The shortcut for results in the order sent gives each hash the verdict and detail that
    matching by value gives the same results shuffled."""
    items = [lower_item(h, SAYINGS[sayings[i % len(sayings)]]) for i, h in enumerate(hashes)]
    in_order = read_results(items, HashType.SHA1, hashes, attempts=2).verdicts
    shuffled = items[:]
    rand.shuffle(shuffled)
    by_value = read_results(shuffled, HashType.SHA1, hashes, attempts=2).verdicts
    assert dict(in_order) == dict(by_value)
    aligned = in_order.aligned_with(hashes)
    assert aligned is not None
    verdicts, details = aligned
    assert [d["sha1"] for d in details] == hashes
    assert [v.status for v in verdicts] == [by_value[h].status for h in hashes]
