"""The fast reading of the usual bulk answer agrees with the general reading, or steps aside."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import Verdicts
from reanalyzer.read.batching import Chunk
from reanalyzer.record.outcome_log import _StoredWithDetails, line_records
from reanalyzer.run.sink import SendingSink
from reanalyzer.send.answers import Action, decide_bulk, parse_body
from reanalyzer.send.fast_answers import read_bulk_answer

HASHES = [c * 40 for c in "abcde"]


def result(hash_value: str, code: Any = 201, *, analyses: Any = None, **detail: Any) -> Any:
    item: dict[str, Any] = {
        "code": code,
        "message": "queued",
        "analysis": [{"name": "core", "code": code, "message": "sent to core"}]
        if analyses is None
        else analyses,
        "detail": {"sha1": hash_value, "md5": "0" * 32, **detail},
    }
    return item


def records(verdicts: Verdicts, hashes: list[str]) -> list[dict[str, Any]]:
    """The outcome records the recording writes for these verdicts, parsed, without the time."""
    sink = SendingSink.__new__(SendingSink)
    sink.counts, sink.by_type, sink.sources = Counter(), Counter(), ["in.txt"]
    chunk = Chunk(HashType.SHA1, tuple(hashes), tuple(range(1, len(hashes) + 1)))
    lines, _ = sink._chunk_lines(chunk, verdicts)
    parsed = []
    for line in lines:  # a log line holds the records of one verdict: read them back
        stored = msgspec.convert(json.loads(line), _StoredWithDetails)
        parsed.extend(line_records(stored, stored.details))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    for record in parsed:
        del record["ts"]
    return parsed


def general(status: int, body: bytes, hashes: list[str]) -> Verdicts:
    decision = decide_bulk(status, parse_body(body), HashType.SHA1, hashes, attempts=1)
    assert decision.action is Action.DONE
    return decision.verdicts


def test_the_usual_answer_is_read_fast_and_recorded_as_generally_read() -> None:
    body = json.dumps({"results": [result(h, imphash="ab" * 16) for h in HASHES]}).encode()
    fast = read_bulk_answer(201, body, HashType.SHA1, HASHES, 1)
    assert fast is not None
    assert dict(fast) == dict(general(201, body, HASHES))
    assert records(fast, HASHES) == records(general(201, body, HASHES), HASHES)
    assert records(fast, HASHES)[0]["detail"]["imphash"] == "ab" * 16  # extra keys are kept


def test_results_that_say_different_things_are_each_judged() -> None:
    items = [result(HASHES[0], 201), result(HASHES[1], 200),
             result(HASHES[2], None, analyses=[{"name": "core", "code": 201, "message": "ok"},
                                               {"name": "cloud", "code": 405, "message": "no"}]),
             result(HASHES[3], 404, analyses=[]), result(HASHES[4], 405)]
    body = json.dumps({"results": items}, indent=2).encode()  # details over several lines
    compact = json.dumps({"results": items}).encode()
    assert read_bulk_answer(200, body, HashType.SHA1, HASHES, 1) is None
    fast = read_bulk_answer(200, compact, HashType.SHA1, HASHES, 1)
    assert fast is not None
    assert records(fast, HASHES) == records(general(200, compact, HASHES), HASHES)
    assert [r["status"] for r in records(fast, HASHES)] == [
        "queued", "already_queued", "partial", "not_found", "not_allowed"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (201, {"results": [result(h) for h in reversed(HASHES)]}),  # out of order
        (201, {"results": [result(h.upper()) for h in HASHES]}),  # not as sent
        (201, {"results": [result(h) for h in HASHES[:-1]]}),  # one left out
        (201, {"results": [result(h, "201") for h in HASHES]}),  # a code as a string
        (201, {"results": [result(h, analyses=[{"name": None}]) for h in HASHES]}),
        (201, {"results": [*[result(h) for h in HASHES[:-1]], "junk"]}),
        (201, {"results": [{"code": 201, "detail": [h]} for h in HASHES]}),  # no object
        (201, {"results": [{"code": 201, "detail": {"md5": "0" * 32}} for h in HASHES]}),
        (201, result(HASHES[0])),  # a lone item, not in `results`
        (404, {"results": [result(h) for h in HASHES]}),  # not an accepted status
    ],
)
def test_unusual_answers_are_left_to_the_general_reading(status: int, body: Any) -> None:
    raw = json.dumps(body).encode()
    assert read_bulk_answer(status, raw, HashType.SHA1, HASHES, 1) is None


def test_bytes_that_are_not_utf8_or_not_json_are_left_to_the_general_reading() -> None:
    good = json.dumps({"results": [result(h, note="x") for h in HASHES]}).encode()
    assert read_bulk_answer(201, good, HashType.SHA1, HASHES, 1) is not None
    assert read_bulk_answer(201, good.replace(b'"x"', b'"\xff"'), HashType.SHA1, HASHES, 1) is None
    assert read_bulk_answer(201, good + b" trailing", HashType.SHA1, HASHES, 1) is None
    assert read_bulk_answer(201, b"<html>busy</html>", HashType.SHA1, HASHES, 1) is None


codes = st.sampled_from([200, 201, 400, 404, 405, 409, None, "201", True])
analysis = st.fixed_dictionaries(
    {"name": st.sampled_from(["core", "cloud", "cape", None]), "code": codes,
     "message": st.sampled_from(["ok", "no", None, "é\u2028"])}
)
extra_detail = st.dictionaries(st.sampled_from(["imphash", "note", "n"]),
                               st.text(max_size=4) | st.integers(), max_size=2)


@given(
    st.lists(
        st.tuples(codes, st.none() | st.lists(analysis, max_size=3), extra_detail),
        min_size=1, max_size=6,
    ),
    st.sampled_from([None, 1]),
    st.sampled_from([200, 201]),
)
def test_fast_and_general_readings_agree(parts: Any, indent: int | None, status: int) -> None:
    hashes = [c * 40 for c in "abcdef"[: len(parts)]]
    items = [result(h, code, analyses=a, **extra)
             for h, (code, a, extra) in zip(hashes, parts, strict=True)]
    body = json.dumps({"results": items}, indent=indent, ensure_ascii=False).encode()
    fast = read_bulk_answer(status, body, HashType.SHA1, hashes, 1)
    if fast is None:
        return  # left to the general reading, which other tests cover
    assert dict(fast) == dict(general(status, body, hashes))
    assert records(fast, hashes) == records(general(status, body, hashes), hashes)
