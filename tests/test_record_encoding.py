"""The fast record encoder writes lines that read back as exactly the documented records."""

from __future__ import annotations

import json

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from reanalyzer.core.outcomes import AnalysisResult, Status, Verdict
from reanalyzer.record.outcome_log import (
    _json_details,
    _StoredWithDetails,
    encode_record,
    encode_verdicts,
    line_records,
    record,
)


def decoded(lines: list[str]) -> list[dict[str, object]]:
    """The records that encoded log lines hold, as a reader restores them."""
    out = []
    for text in lines:
        assert text.endswith("\n")
        assert "\n" not in text[:-1]
        stored = msgspec.convert(json.loads(text), _StoredWithDetails)
        out.extend(line_records(stored, stored.details))
    return out

texts = st.none() | st.text(max_size=30)
analyses = st.lists(
    st.builds(AnalysisResult, st.sampled_from(["cloud", "core"]), st.none() | st.integers(100, 599),
              texts),
    max_size=3,
).map(tuple)
details = st.dictionaries(st.sampled_from(["md5", "sha1", "imphash", "odd key"]),
                          st.text(max_size=20), max_size=4)


@given(
    hash_value=st.none() | st.text("0123456789abcdef", min_size=32, max_size=32),
    status=st.sampled_from(list(Status)),
    source=st.text(min_size=1, max_size=20),
    line=st.integers(1, 10**9),
    reason=texts,
    http_status=st.none() | st.integers(100, 599),
    attempts=st.integers(0, 50),
    analyses=analyses,
    detail=details,
)
def test_encoded_record_is_the_documented_record(
    hash_value: str | None, status: Status, source: str, line: int, reason: str | None,
    http_status: int | None, attempts: int, analyses: tuple[AnalysisResult, ...],
    detail: dict[str, str],
) -> None:
    """Whatever the values (quotes, newlines, unicode in reasons or sources), the line is one
    line, and reads back as the record the schema function builds."""
    fields = {
        "hash_value": hash_value, "hash_type": None if hash_value is None else "md5",
        "status": status, "source": source, "line": line, "ts": "2026-11-26T10:00:00.000Z",
        "reason": reason, "http_status": http_status, "attempts": attempts, "detail": detail,
    }
    encoded = encode_record(**fields, analyses=analyses)  # type: ignore[arg-type]
    expected = record(**fields, analyses=[(a.name, a.code, a.message) for a in analyses])  # type: ignore[arg-type]
    assert decoded([encoded]) == [expected]


verdicts = st.builds(
    Verdict, st.sampled_from(list(Status)), st.none() | st.integers(100, 599),
    st.integers(0, 9), analyses, details, texts,
)


@given(st.lists(st.tuples(st.text("0123456789abcdef", min_size=40, max_size=40),
                          st.sampled_from(["a.txt", "b \"quoted\".txt"]), st.integers(1, 10**6),
                          verdicts), min_size=1, max_size=20))
def test_a_batch_encodes_as_its_records_would(
    rows: list[tuple[str, str, int, Verdict]],
) -> None:
    """Encoding an answered request at once writes the records encode_record writes one by one,
    in order."""
    ts = "2026-11-26T10:00:00.000Z"
    batch = encode_verdicts("sha1", [r[0] for r in rows], [r[1] for r in rows],
                            [r[2] for r in rows], [r[3] for r in rows], ts)
    one_by_one = [
        encode_record(hash_value=h, hash_type="sha1", status=v.status, source=src, line=line,
                      ts=ts, reason=v.reason, http_status=v.http_status, attempts=v.attempts,
                      analyses=v.analyses, detail=v.detail)
        for h, src, line, v in rows
    ]
    assert decoded(batch) == decoded(one_by_one)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=())),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)


@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=5))
@example([{"sha1": "ab" * 20}, {"n": 2**70}])
@example([{"s": "\ud800"}, {"md5": "cd" * 16}])
def test_details_encode_as_json_writes_them(details: list[dict[str, object]]) -> None:
    """Any detail an appliance can send (json's lenient parse lets in integers beyond 64 bits
    and lone surrogates, which orjson refuses) is written as json itself would write it."""
    expected = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in details]
    assert _json_details(details) == expected  # type: ignore[arg-type]


hex40 = st.text("0123456789abcdef", min_size=40, max_size=40)


@given(st.lists(st.tuples(hex40, st.integers(0, 3), st.lists(hex40, max_size=3)),
                min_size=1, max_size=12),
       st.sampled_from(["", "{\"n\":{\"sha1\":1}}", "UPPER"]))
def test_details_holding_the_sent_hash_read_back_as_sent(
    rows: list[tuple[str, int, list[str]]], odd: str,
) -> None:
    """A detail that names the sent hash (at any place, beside other keys, as the appliance
    sends them) is stored without it and reads back as sent; one of another shape (nested,
    the hash in capitals) is kept whole and reads back as sent too."""
    from reanalyzer.core.outcomes import DetailTexts

    texts = DetailTexts()
    expected = []
    for value, place, others in rows:
        pairs = [(f"k{i}", other) for i, other in enumerate(others)]
        pairs.insert(min(place, len(pairs)), ("sha1", value.upper() if odd == "UPPER" else value))
        if odd.startswith("{"):
            pairs.append(("n", {"sha1": 1}))  # type: ignore[arg-type]
        detail = dict(pairs)
        expected.append(detail)
        texts.append(json.dumps(detail, separators=(",", ":")))
    ts = "2026-11-26T10:00:00.000Z"
    verdict = Verdict(Status.QUEUED, 201, 1)
    hashes = [r[0] for r in rows]
    lines = encode_verdicts("sha1", hashes, ["a.txt"] * len(rows), list(range(1, len(rows) + 1)),
                            [verdict] * len(rows), ts, texts)
    assert [r["detail"] for r in decoded(lines)] == expected
