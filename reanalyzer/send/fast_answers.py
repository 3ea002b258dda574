"""The usual bulk answer, read fast: every result in the order sent, in the API's own types.

Reading answers was the largest cost per hash in the runner (issue 3's overhead target): a
generic JSON parse builds some fifteen Python objects per result, and each result's `detail` was
then encoded again for its record. Here msgspec decodes the answer straight into typed structs,
keeping each `detail` as the JSON text the appliance sent, which its record then takes as it is.

Anything unusual returns None, and `answers.decide_bulk` reads the answer the general way: a
value of another type (a code as a string, an analysis without a name), a result without any
code or an analysis without one (which `answers.unreadable` refuses: those hashes are sent
again), results out of order or not named exactly as sent, a detail over several lines or not
UTF-8. So this path never decides otherwise than the general one, only faster;
tests/test_fast_answers.py checks that they agree.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence

import msgspec

from reanalyzer.core.hashes import HashType
from reanalyzer.core.outcomes import DetailTexts, Verdict, Verdicts
from reanalyzer.send.answers import ACCEPTED_CODES, judged_in_runs, shared_verdict, unreadable

_NULL = msgspec.Raw(b"null")


class _Analysis(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    code: int | None = None
    message: str | None = None


class _Result(msgspec.Struct, gc=False):
    code: int | None = None
    message: str | None = None
    # Kept as JSON text: results that say the same thing compare as bytes, and only the first
    # of a run of them is decoded (and checked) to be judged.
    analysis: msgspec.Raw = _NULL
    detail: msgspec.Raw = _NULL


class _BulkAnswer(msgspec.Struct, gc=False):
    results: list[_Result]


# One struct per hash type, holding only that type's hash: the other keys of a detail are
# skipped in C instead of becoming strings.
class _Md5(msgspec.Struct, gc=False):
    md5: str | None = None


class _Sha1(msgspec.Struct, gc=False):
    sha1: str | None = None


class _Sha256(msgspec.Struct, gc=False):
    sha256: str | None = None


class _Sha512(msgspec.Struct, gc=False):
    sha512: str | None = None


_answer_decoder = msgspec.json.Decoder(_BulkAnswer)
_analyses_decoder = msgspec.json.Decoder(list[_Analysis] | None)
_NAMED: dict[HashType, tuple[Callable[[bytes], list[object]], Callable[[object], str | None]]] = {
    hash_type: (
        msgspec.json.Decoder(list[struct]).decode,  # type: ignore[valid-type]
        operator.attrgetter(hash_type.value),
    )
    for hash_type, struct in (
        (HashType.MD5, _Md5),
        (HashType.SHA1, _Sha1),
        (HashType.SHA256, _Sha256),
        (HashType.SHA512, _Sha512),
    )
}


def read_bulk_answer(
    status: int, body: bytes, hash_type: HashType, hashes: Sequence[str], attempts: int
) -> Verdicts | None:
    """The verdicts of an accepted bulk request whose answer names, in order, exactly the
    hashes sent; None for any other answer (`decide_bulk` reads those)."""
    if status not in ACCEPTED_CODES:
        return None
    try:
        results = _answer_decoder.decode(body).results
        if len(results) != len(hashes):
            return None
        decode_all, named = _NAMED[hash_type]
        raws = [result.detail for result in results]
        # One decode of all the details: ~20% faster than one call per detail.
        if list(map(named, decode_all(b"[%b]" % b",".join(raws)))) != list(hashes):
            return None
        texts = DetailTexts([str(raw, "utf-8") for raw in raws])
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    if (b"\n" in body or b"\r" in body) and any("\n" in t or "\r" in t for t in texts):
        return None  # a record is one line: such a detail is encoded again, on one
    sayings = [(r.analysis, r.code, r.message) for r in results]
    try:
        verdicts = judged_in_runs(results, sayings, lambda result: _verdict(result, attempts))
    except (msgspec.ValidationError, _Unreadable):  # an analysis list not as the API's
        return None
    return Verdicts.in_order(hashes, verdicts, texts)


def _verdict(result: _Result, attempts: int) -> Verdict:
    """The verdict of a result, judged as `answers` judges the same result parsed generically.
    Answers mostly say the same things, and a Verdict is frozen: each is judged once."""
    return _judged(bytes(result.analysis), result.code, result.message, attempts)


class _Unreadable(Exception):  # a state: the general reading decides
    """A result that `answers.unreadable` refuses: missing codes, typed as the API's."""


@functools.lru_cache(maxsize=1024)
def _judged(analysis: bytes, code: int | None, message: str | None, attempts: int) -> Verdict:
    item: dict[str, object] = {"code": code, "message": message}
    analyses = _analyses_decoder.decode(analysis)
    if analyses is not None:
        item["analysis"] = [
            {"name": a.name, "code": a.code, "message": a.message} for a in analyses
        ]
    if unreadable(item) is not None:
        raise _Unreadable
    return shared_verdict(item, attempts)
