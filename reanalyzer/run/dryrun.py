"""`--dry-run`: the whole front of the pipeline on real input, and a report, not requests."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from reanalyzer.core.hashes import HashType
from reanalyzer.core.positions import unpack_position
from reanalyzer.core.shards import Shard
from reanalyzer.read.batching import Chunk
from reanalyzer.read.front import FrontStats, LocalOutcomes

_EXAMPLES = 20


@dataclass(slots=True)
class DryRunSink:
    """Counts what would be sent and keeps a few invalid lines as examples."""

    sources: list[str]
    chunks: Counter[HashType] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[str, int, str]] = field(default_factory=list)

    async def settled(self, outcomes: LocalOutcomes) -> None:
        for pos, reason in outcomes.invalid:
            self.reasons[reason.split(":")[0]] += 1
            if len(self.examples) < _EXAMPLES:
                source_index, line = unpack_position(pos)
                self.examples.append((self.sources[source_index], line, reason))

    async def chunk(self, chunk: Chunk) -> None:
        self.chunks[chunk.hash_type] += 1


def build_report(
    sink: DryRunSink, stats: FrontStats, elapsed: float, shard: Shard | None = None
) -> dict[str, Any]:
    return {
        "inputs": sink.sources,
        "shard": None if shard is None else str(shard),
        "lines": stats.lines,
        "skipped": stats.skipped,
        "other_shards": stats.other_shards,
        "records": stats.records,
        "to_send": {t.value: stats.hashes[t] for t in HashType if stats.hashes[t]},
        "to_send_total": stats.to_send,
        "requests": {t.value: sink.chunks[t] for t in HashType if sink.chunks[t]},
        "requests_total": stats.chunks,
        "duplicates": stats.duplicates,
        "unremembered": stats.unremembered,
        "invalid": stats.invalid,
        "invalid_reasons": dict(sink.reasons.most_common()),
        "invalid_examples": [
            {"source": source, "line": line, "reason": reason}
            for source, line, reason in sink.examples
        ],
        "accounted": stats.records == stats.to_send + stats.duplicates + stats.invalid,
        "elapsed_s": round(elapsed, 3),
        "lines_per_s": round(stats.lines / elapsed) if elapsed > 0 else None,
        # Peak resident memory of this process and of the read-ahead child (None: a thread).
        "peak_rss_mib": {
            "process": _own_peak_rss_mib(),
            "reader": None
            if stats.reader_peak_rss_kib is None
            else stats.reader_peak_rss_kib // 1024,
        },
    }


def format_report(report: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(report, indent=2)
    shard = f"; shard {report['shard']}: what this worker would send" if report["shard"] else ""
    out = [
        f"dry run: nothing was sent ({', '.join(report['inputs'])}){shard}",
        f"  lines read        {report['lines']:>12,}",
        f"  blank or comment  {report['skipped']:>12,}",
        *([f"  other shards'     {report['other_shards']:>12,}"] if report["shard"] else []),
        f"  records           {report['records']:>12,}",
        f"    to send         {report['to_send_total']:>12,}" + _by_type(report["to_send"]),
        f"    duplicates      {report['duplicates']:>12,}",
        *(
            [f"    (unremembered)  {report['unremembered']:>12,}  sent past --dedupe-memory"]
            if report["unremembered"]
            else []
        ),
        f"    invalid         {report['invalid']:>12,}",
        f"  requests          {report['requests_total']:>12,}" + _by_type(report["requests"]),
    ]
    if report["invalid_reasons"]:
        out.append("  invalid lines by reason:")
        out += [
            f"    {count:>10,}  {reason}" for reason, count in report["invalid_reasons"].items()
        ]
        out.append("  first invalid lines:")
        out += [f"    {e['source']}:{e['line']}: {e['reason']}" for e in report["invalid_examples"]]
    verdict = "every record accounted for" if report["accounted"] else "ACCOUNTING MISMATCH"
    out.append(f"  {verdict}; {report['elapsed_s']} s, {report['lines_per_s'] or 0:,} lines/s")
    return "\n".join(out)


def _by_type(counts: dict[str, int]) -> str:
    return "  (" + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + ")" if counts else ""


def _own_peak_rss_mib() -> int | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: KiB
