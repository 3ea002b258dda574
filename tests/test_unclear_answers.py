"""Answers the appliance did not clearly give: unreadable items, and non-API bodies mid-job."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Status
from reanalyzer.send.answers import (
    Action,
    decide_bulk,
    decide_single,
    decide_status,
    parse_body,
    printable_start,
    read_results,
    unreadable,
)
from reanalyzer.send.fast_answers import read_bulk_answer
from reanalyzer.simulator import SimulatorConfig, World
from reanalyzer.simulator import answers as sim_answers
from reanalyzer.simulator import faults as sim_faults
from reanalyzer.simulator.config import WrongShape

H1, H2, H3, H4 = (c * 40 for c in "abcd")
STRANGER = "e" * 40
CORE_201 = [{"name": "core", "code": 201, "message": "Sample is queued for core analysis."}]


def good(hash_value: str, code: int = 201) -> dict[str, Any]:
    """A readable v2 result item for `hash_value` (no top-level code, as v2 answers)."""
    return {"analysis": [{"name": "core", "code": code, "message": "m"}],
            "detail": {"sha1": hash_value, "md5": "0" * 32}}


# Items that cannot be read or attributed, as a proxy or a half-broken appliance sends them.
JUNK: dict[str, Any] = {
    "not an object": "queued",
    "a list": [H2],
    "no detail": {"analysis": CORE_201},
    "detail not an object": {"analysis": CORE_201, "detail": H2},
    "detail naming no sha1": {"analysis": CORE_201, "detail": {"md5": "0" * 32}},
    "code as a string": {"code": "201", "detail": {"sha1": H2}},
    "analysis code as a string": {"analysis": [{"name": "core", "code": "201"}],
                                  "detail": {"sha1": H2}},
    "analysis code missing": {"analysis": [{"name": "core"}], "detail": {"sha1": H2}},
    "analysis entry not an object": {"code": 201, "analysis": ["core"], "detail": {"sha1": H2}},
    "analysis not a list": {"code": 201, "analysis": "core", "detail": {"sha1": H2}},
    "code a boolean": {"code": True, "detail": {"sha1": H2}},
    "no code at all": {"message": "ok", "detail": {"sha1": H2}},
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=list(JUNK))
def test_an_unreadable_item_makes_the_hashes_it_leaves_unanswered_retried(junk: Any) -> None:
    """H1 is clearly queued and keeps it; H2 and H3 are not clearly answered and are retried,
    never recorded `not_found`."""
    body = {"results": [good(H1), junk]}
    decision = decide_bulk(201, body, HashType.SHA1, [H1, H2, H3])
    assert decision.action is Action.RETRY
    assert decision.unsettled == (H2, H3)
    assert dict(decision.verdicts).keys() == {H1}
    assert decision.verdicts[H1].status is Status.QUEUED
    assert all(v.status is not Status.NOT_FOUND for v in decision.verdicts.values())
    assert "not clearly answered" in decision.reason


@pytest.mark.parametrize("junk", JUNK.values(), ids=list(JUNK))
def test_the_fast_reading_leaves_every_unreadable_answer_to_the_general_one(junk: Any) -> None:
    """An answer with any unreadable item is not read fast, even when it is the only item."""
    for items in ([junk], [good(H1), junk]):
        hashes = [H1, H2][: len(items)]
        raw = json.dumps({"results": items}).encode()
        assert read_bulk_answer(201, raw, HashType.SHA1, hashes, 1) is None


def test_unreadable_answer_for_every_hash_retries_the_whole_request() -> None:
    """Nothing attributable at all: every hash is sent again, none gets a verdict."""
    body = {"results": ["x", {"code": 201}, {"detail": {"md5": "0" * 32}, "code": 201}]}
    decision = decide_bulk(200, body, HashType.SHA1, [H1, H2, H3])
    assert decision.action is Action.RETRY
    assert decision.unsettled == (H1, H2, H3)
    assert not decision.verdicts
    assert not decision.in_api_shape


def test_an_unreadable_item_beside_answers_for_every_hash_changes_nothing() -> None:
    """When every hash sent is clearly answered, a stray unreadable item settles nothing."""
    body = {"results": [good(H1), "junk", good(H2, 200)]}
    decision = decide_bulk(201, body, HashType.SHA1, [H1, H2])
    assert decision.action is Action.DONE
    assert decision.verdicts[H1].status is Status.QUEUED
    assert decision.verdicts[H2].status is Status.ALREADY_QUEUED


def test_unreadable_items_in_the_order_sent_are_read_one_by_one() -> None:
    """The in-order shortcut steps aside when one result of the right length is unreadable."""
    items = [good(H1), {"code": "201", "detail": {"sha1": H2}}, good(H3)]
    read = read_results(items, HashType.SHA1, [H1, H2, H3])
    assert read.unsettled == (H2,)
    assert {h: v.status for h, v in read.verdicts.items()} == {
        H1: Status.QUEUED, H3: Status.QUEUED}
    assert read.verdicts[H3].detail["sha1"] == H3


def test_not_found_needs_a_404_or_absence_from_a_wholly_read_answer() -> None:
    """A 404 item, or absence from an answer whose every item was read, is `not_found`; a
    result naming another sha1 than those sent is read, attributed to no hash sent, ignored."""
    body = {"results": [good(H1), good(H2, 404), good(STRANGER)]}
    decision = decide_bulk(201, body, HashType.SHA1, [H1, H2, H3])
    assert decision.action is Action.DONE
    assert decision.verdicts[H2].status is Status.NOT_FOUND
    assert decision.verdicts[H3].status is Status.NOT_FOUND
    assert decision.verdicts[H3].reason == "absent from the bulk answer"
    assert STRANGER not in decision.verdicts
    assert decision.in_api_shape


def test_unreadable_names_what_is_wrong_and_accepts_the_documented_shapes() -> None:
    """v1 items (code, no analysis), v2 items (analysis, no code) and 404 items are readable."""
    assert unreadable({"code": 200, "message": "m", "detail": {}}) is None
    assert unreadable({"analysis": CORE_201, "detail": {}}) is None
    assert unreadable({"code": 404, "analysis": [], "detail": {}}) is None
    assert unreadable({"code": None, "analysis": CORE_201}) is None
    assert unreadable({"code": "201"}) == "a result code that is not an integer"
    assert unreadable({"detail": {}}) == "a result without any code"
    assert unreadable(7) == "a result that is not an object"


@given(
    st.lists(st.sampled_from(["good", "404", "junk", "missing"]), min_size=1, max_size=8),
    st.sampled_from(sorted(JUNK)),
    st.randoms(),
)
def test_every_hash_is_settled_once_or_retried_and_never_guessed_not_found(
    kinds: list[str], junk_name: str, rand: Any
) -> None:
    """Whatever mix of readable, 404, unreadable and missing items: each hash sent is either
    given a verdict or retried, never both; `not_found` only for a 404 item or, when every
    item was read, for absence; each readable item keeps its own verdict."""
    hashes = [f"{i:040x}" for i in range(len(kinds))]
    items: list[Any] = []
    for h, kind in zip(hashes, kinds, strict=True):
        if kind == "good":
            items.append(good(h))
        elif kind == "404":
            items.append(good(h, 404))
        elif kind == "junk":
            junk = JUNK[junk_name]
            items.append(json.loads(json.dumps(junk).replace(H2, h)))
    rand.shuffle(items)
    read = read_results(items, HashType.SHA1, hashes)
    assert set(read.verdicts).isdisjoint(read.unsettled)
    assert set(read.verdicts) | set(read.unsettled) == set(hashes)
    for h, kind in zip(hashes, kinds, strict=True):
        if kind == "good":
            assert read.verdicts[h].status is Status.QUEUED
        elif kind == "404":
            assert read.verdicts[h].status is Status.NOT_FOUND
        elif "junk" in kinds:
            assert h in read.unsettled  # an unreadable answer: not a guess of absence
        else:
            assert read.verdicts[h].status is Status.NOT_FOUND


def test_single_answer_with_unreadable_codes_is_retried() -> None:
    """A single-sample answer whose analysis codes are strings is asked again, not guessed."""
    body = {"code": 201, "analysis": [{"name": "core", "code": "201"}], "detail": {"sha1": H1}}
    decision = decide_single(201, body, H1)
    assert decision.action is Action.RETRY
    assert not decision.verdicts
    readable = decide_single(201, {"code": 201, "analysis": CORE_201}, H1)
    assert readable.action is Action.DONE
    assert readable.in_api_shape


def test_status_answer_with_unreadable_items_asks_again_for_what_it_did_not_answer() -> None:
    """Held and not_found said clearly are kept; the rest is asked again, never "not held"."""
    body = {"hash_type": "sha1", "results": [
        {"hash_value": H1, "status": "processed"},
        {"hash_value": H2, "status": "not_found"},
        "junk",
        {"hash_value": H3, "status": 1},
    ]}
    decision = decide_status(200, body, "", [H1, H2, H3, H4])
    assert decision.action is Action.RETRY
    assert decision.held == {H1}
    assert decision.unsettled == (H3, H4)
    assert decision.in_api_shape


@pytest.mark.parametrize("junk", [
    "junk", {"status": "processed"}, {"hash_value": 5, "status": "processed"},
    {"hash_value": "x" * 40, "status": "processed"},
])
def test_status_items_that_name_no_hash_make_the_rest_asked_again(junk: Any) -> None:
    """A status item that cannot be attributed leaves the hashes not clearly answered unsettled."""
    body = {"results": [{"hash_value": H1, "status": "not_found"}, junk]}
    decision = decide_status(200, body, "", [H1, H2])
    assert (decision.action, decision.unsettled, decision.held) == (Action.RETRY, (H2,), set())


def test_status_answer_wholly_read_is_done_as_before() -> None:
    """Every item read: left-out hashes count as held, not_found ones do not."""
    body = {"results": [{"hash_value": H1, "status": "not_found"},
                        {"hash_value": STRANGER, "status": "processed"}]}
    decision = decide_status(200, body, "", [H1, H2])
    assert (decision.action, decision.held) == (Action.DONE, {H2})


HTML = ("<!DOCTYPE html>\r\n<html><head>\x07<title>Sign in</title></head>\n<body>"
        + "Please sign in to continue. " * 20 + "</body></html>")


@pytest.mark.parametrize(("status", "body", "text"), [
    (200, None, HTML), (201, None, HTML), (400, None, HTML), (405, None, HTML),
    (404, None, HTML), (404, {"detail": "Not found."}, ""), (302, None, HTML),
])
def test_a_body_not_the_apis_mid_job_is_retried_and_described(
    status: int, body: Any, text: str
) -> None:
    """After an answer in the API's shape, an HTML page (or a 404, or a redirect) is a bad
    moment: retried, with its status, content type and first printable characters."""
    before = decide_bulk(status, body, HashType.SHA1, [H1, H2], text)
    assert before.action is Action.MISCONFIGURED
    after = decide_bulk(status, body, HashType.SHA1, [H1, H2], text,
                        answered_before=True, content_type="text/html")
    assert after.action is Action.RETRY
    assert not after.verdicts
    assert not after.unsettled  # the whole request
    assert not after.in_api_shape
    assert f"HTTP {status}" in after.reason
    assert "text/html" in after.reason
    if text:
        shown = printable_start(text)
        assert shown in after.reason
        assert len(shown) == 100
        assert "\r" not in after.reason
        assert "\x07" not in after.reason
        assert "sign in to continue. Please" in after.reason


def test_status_request_answered_with_a_page_mid_job_is_retried() -> None:
    """The status endpoint's non-API answer is a wrong URL at first, a bad moment later."""
    first = decide_status(200, parse_body(HTML.encode()), HTML, [H1])
    assert first.action is Action.MISCONFIGURED
    later = decide_status(200, None, HTML, [H1], answered_before=True, content_type=None)
    assert later.action is Action.RETRY
    assert "no content type" in later.reason


def test_single_redirect_mid_job_is_retried_not_followed() -> None:
    """A redirect is a wrong URL at first; later a login page's moment, retried."""
    assert decide_single(302, None, H1).action is Action.MISCONFIGURED
    assert decide_single(302, None, H1, "", answered_before=True).action is Action.RETRY


def test_the_usual_errors_are_decided_alike_before_and_after_a_good_answer() -> None:
    """answered_before changes only what is not the API's answer: a 503, a 429, a 401, an
    HTML 413 and a JSON 405 split are decided as before."""
    for status, body, text in [(503, None, HTML), (429, None, ""), (401, None, ""),
                               (413, None, HTML), (405, {"message": "extracted"}, "")]:
        before = decide_bulk(status, body, HashType.SHA1, [H1, H2], text)
        after = decide_bulk(status, body, HashType.SHA1, [H1, H2], text, answered_before=True)
        assert before == after


def test_printable_start_drops_control_characters_and_folds_whitespace() -> None:
    """Only printable characters, whitespace runs as one space, at most the limit."""
    assert printable_start("a\r\n\tb\x00c\x1b[0m" + "z" * 200, limit=10) == "a bc[0mzzz"
    assert printable_start("") == ""


@pytest.mark.parametrize("shape", [s for s in WrongShape if s is not WrongShape.MIXED])
def test_the_simulators_wrong_shapes_are_retried_never_not_found(shape: WrongShape) -> None:
    """Each wrong shape the simulator serves (after queuing the samples) is read as: send them
    again; neither reader records a status for any hash of it."""
    world = World.generate(20, seed=5, share_absent=0.0, share_extracted=0.0, share_queued=0.0)
    hashes = [s.sha1 for s in world.samples[:4]]
    config = SimulatorConfig(token="t")
    whole = sim_answers.bulk(world, config, hashes, [sim_answers.Analysis.CORE])
    spoiled = sim_faults.wrong_shape(whole, shape, hashes, status=False)
    assert read_bulk_answer(whole.status, spoiled.body, HashType.SHA1, hashes, 1) is None
    decision = decide_bulk(whole.status, parse_body(spoiled.body), HashType.SHA1, hashes)
    assert decision.action is Action.RETRY
    assert decision.unsettled == tuple(hashes)
    assert not decision.verdicts


def test_the_simulators_proxy_page_stops_a_first_request_and_is_retried_later() -> None:
    """The simulator's proxy page is a wrong URL at the first request, a bad moment later."""
    page = sim_faults.proxy_page()
    text = page.body.decode()
    first = decide_bulk(page.status, parse_body(page.body), HashType.SHA1, [H1], text)
    assert first.action is Action.MISCONFIGURED
    later = decide_bulk(page.status, parse_body(page.body), HashType.SHA1, [H1], text,
                        answered_before=True, content_type=page.content_type)
    assert later.action is Action.RETRY
    assert "HTTP 200, text/html, body '<!DOCTYPE html> <html lang=\"en\">" in later.reason
