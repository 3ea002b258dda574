"""--dedupe-memory through the CLI against the simulator: past the budget new hashes go on
unremembered, a repeat of one is sent again and answered already_queued, every line still gets
exactly one outcome, and the summary counts them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import test_run_against_simulator as against
from test_run_against_simulator import StartSim, outcomes, run_subprocess

from reanalyzer.errors import ExitCode
from reanalyzer.read.dedupe import BYTES_PER_HASH
from reanalyzer.record import jobdir

# That module's fixtures: simulators in the test's loop, and no developer's settings.
start = against.start
_isolated_settings = against._isolated_settings

DISTINCT = 600
BUDGET = 900  # bytes: room for 100 hashes


FILLER = ["# a comment, between the hashes and their repeats"] * 30_000  # 1.5 MB: > a block


def _twice(sim_hashes: list[str], path: Path) -> None:
    """Each hash, then each again after a block's worth of comments: the repeats are read in
    a later block than their first copy (within a block, repeats are found whatever the
    budget)."""
    path.write_text("\n".join(sim_hashes + FILLER + sim_hashes) + "\n")


async def test_past_the_budget_repeats_are_sent_again_and_counted(
    start: StartSim, tmp_path: Path
) -> None:
    """With room for 100 hashes, 600 distinct hashes given twice: each line has one outcome,
    each sample is queued once (a repeat sent again is answered already_queued), at most the
    remembered hashes' repeats are duplicates, the summary counts every hash sent unremembered,
    and the warning is given once."""
    sim = await start(samples=DISTINCT, share_absent=0, share_extracted=0, share_queued=0)
    hashes = [s.sha1 for s in sim.world.samples]
    path = tmp_path / "hashes.txt"
    _twice(hashes, path)
    job = tmp_path / "job"
    code, stderr = await run_subprocess(sim.url, [path], job, "--dedupe-memory", str(BUDGET))
    assert code == ExitCode.OK, stderr
    records = outcomes(job)
    lines = [*range(1, DISTINCT + 1), *range(DISTINCT + len(FILLER) + 1,
                                             2 * DISTINCT + len(FILLER) + 1)]
    assert sorted(r["line"] for r in records) == lines
    statuses = Counter(r["status"] for r in records)
    assert statuses["queued"] == DISTINCT  # each sample once: a second sending is a repeat
    assert statuses["already_queued"] > 0  # repeats of hashes the set could not keep
    assert statuses["queued"] + statuses["already_queued"] + statuses["duplicate"] == 2 * DISTINCT
    remembered = BUDGET // BYTES_PER_HASH
    sent = statuses["queued"] + statuses["already_queued"]
    summary = json.loads((job / jobdir.SUMMARY_FILE).read_text())
    assert summary["unremembered"] == sent - remembered
    assert summary["recorded"]["already_queued"] == statuses["already_queued"]
    assert stderr.count('"event": "front.dedupe_full"') == 1
    finished = next(json.loads(line) for line in stderr.splitlines()
                    if '"event": "job.finished"' in line)
    assert f"unremembered {sent - remembered:>15,}" in finished["message"]


async def test_within_the_budget_every_repeat_is_a_duplicate(
    start: StartSim, tmp_path: Path
) -> None:
    """At the default budget the same input sends each hash once: every repeat is recorded
    duplicate, nothing is unremembered and no warning is given."""
    sim = await start(samples=DISTINCT, share_absent=0, share_extracted=0, share_queued=0)
    path = tmp_path / "hashes.txt"
    _twice([s.sha1 for s in sim.world.samples], path)
    job = tmp_path / "job"
    code, stderr = await run_subprocess(sim.url, [path], job)
    assert code == ExitCode.OK, stderr
    statuses = Counter(r["status"] for r in outcomes(job))
    assert statuses == {"queued": DISTINCT, "duplicate": DISTINCT}
    assert json.loads((job / jobdir.SUMMARY_FILE).read_text())["unremembered"] == 0
    assert "front.dedupe_full" not in stderr


async def test_a_resume_rebuilds_dedupe_from_the_log(start: StartSim, tmp_path: Path) -> None:
    """A job stopped part way (--max-requests) and run again records the repeats of hashes its
    first run sent as duplicate: the reading child read them from the log, none is sent twice."""
    sim = await start(samples=DISTINCT, share_absent=0, share_extracted=0, share_queued=0)
    path = tmp_path / "hashes.txt"
    _twice([s.sha1 for s in sim.world.samples], path)
    job = tmp_path / "job"
    code, stderr = await run_subprocess(sim.url, [path], job, "--batch-size", "50",
                                        "--max-requests", "4")
    assert code == ExitCode.INTERRUPTED, stderr
    code, stderr = await run_subprocess(sim.url, [path], job, "--batch-size", "50")
    assert code == ExitCode.OK, stderr
    final = {r["line"]: r["status"] for r in outcomes(job)}
    assert len(final) == 2 * DISTINCT
    assert Counter(final.values()) == {"queued": DISTINCT, "duplicate": DISTINCT}
    sent = Counter(h for r in sim.log.records if r.status in (200, 201) for h in r.hashes)
    assert max(sent.values()) == 1
