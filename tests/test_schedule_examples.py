"""The sharded examples of scripts/schedule/ cannot rot: each one's command line, read out of
its file, runs (`--dry-run`) with the variables its scheduler would set, in a shell, and the
worker takes the shard the scheduler meant; each `status`/`report` line parses."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from reanalyzer.cli import build_parser
from reanalyzer.core.shards import shard_of

SCHEDULE = Path(__file__).resolve().parents[1] / "scripts" / "schedule"
INPUT = "inputs/hashes-2024.txt.gz"  # the input every sharded example names
HASHES = [f"{i:040x}" for i in range(40)] + [f"{i:032X}" for i in range(40)] + ["junk"]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A working directory as the examples expect one: the input, and a token file in HOME."""
    (tmp_path / "inputs").mkdir()
    with gzip.open(tmp_path / INPUT, "wt") as out:
        out.write("\n".join(HASHES) + "\n")
    token = tmp_path / ".config" / "reanalyzer" / "token"
    token.parent.mkdir(parents=True)
    token.write_text("tok-example\n")
    return tmp_path


def _dry_run(command: str, site: Path, **scheduler: str) -> dict[str, object]:
    """Run an example's command in a shell, as its scheduler would, with --dry-run."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("REANALYZER_", "SLURM_", "AWS_BATCH_", "JOB_COMPLETION"))}
    env = {**clean, "HOME": str(site),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}",
           **scheduler}
    done = subprocess.run(["bash", "-c", f"{command} --dry-run --report-format json"],
                          cwd=site, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _expected_to_send(index: int, count: int) -> int:
    return sum(shard_of(h.lower(), count) == index for h in HASHES if h != "junk")


def _continued(text: str, start: str) -> str:
    """The shell command beginning with `start`, its backslash-continued lines joined."""
    at = text.index(start)
    command = []
    for line in text[at:].splitlines():
        command.append(line.rstrip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            break
    return " ".join(part.strip() for part in command)


def _yaml_args(text: str, container: str) -> list[str]:
    """The `args:` list of a container of a Kubernetes manifest (plain `- item` lines)."""
    block = text[text.index(f"- name: {container}\n"):]
    lines = block[block.index("args:\n") + len("args:\n"):].splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    args = []
    for line in lines:
        if len(line) - len(line.lstrip()) != indent or not line.lstrip().startswith("- "):
            break
        args.append(line.strip()[2:])
    return args


def test_the_kubernetes_indexed_job_runs_its_index_s_shard(site: Path) -> None:
    """The Indexed Job's pod for index 2 of completions 4 sends shard 2/4; the manifest has
    the pieces a sharded job needs."""
    text = (SCHEDULE / "indexed-job.yaml").read_text()
    args = _yaml_args(text, "reanalyzer")
    completions = int(re.search(r"completions: (\d+)", text).group(1))  # type: ignore[union-attr]
    assert f"--shard-count={completions}" in args
    for index in (0, 2, completions - 1):
        report = _dry_run(shlex.join(["reanalyzer", *args]), site,
                          JOB_COMPLETION_INDEX=str(index))
        assert report["shard"] == f"{index}/{completions}"
        assert report["to_send_total"] == _expected_to_send(index, completions)
    for needed in ("completionMode: Indexed", "backoffLimitPerIndex:", "podFailurePolicy:",
                   "action: FailIndex", "persistentVolumeClaim:", "secretKeyRef:",
                   f"parallelism: {completions}"):
        assert needed in text, needed
    codes = re.search(r"operator: In\s+values: \[([\d, ]+)\]", text)
    assert codes is not None
    assert {2, 6, 7} <= {int(c) for c in codes.group(1).split(",")}


def test_the_slurm_array_runs_its_task_s_shard_and_a_rerun_alone(site: Path) -> None:
    """Task 6 of --array=4-7 is shard 2/4 (ID minus MIN); a rerun of that shard alone, as the
    script says to submit it, is shard 2/4 again."""
    text = (SCHEDULE / "reanalyzer-array.sbatch").read_text()
    command = _continued(text, "exec reanalyzer run").removeprefix("exec ")
    assert "--token-file" in command
    report = _dry_run(command, site, SLURM_ARRAY_TASK_ID="6", SLURM_ARRAY_TASK_MIN="4",
                      SLURM_ARRAY_TASK_MAX="7", SLURM_ARRAY_TASK_COUNT="4",
                      SLURM_ARRAY_JOB_ID="100")
    assert report["shard"] == "2/4"
    assert report["to_send_total"] == _expected_to_send(2, 4)
    rerun = re.search(r"--export=ALL,SHARD=(\d+)/(\d+)", text)
    assert rerun is not None
    report = _dry_run(command, site, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_MIN="2",
                      SLURM_ARRAY_TASK_COUNT="1", SHARD=f"{rerun[1]}/{rerun[2]}")
    assert report["shard"] == "2/4"
    merge = (SCHEDULE / "reanalyzer-merge.sbatch").read_text()
    assert "reanalyzer status jobs/hashes-2024-*-shard-*of4" in merge


def test_the_gnu_parallel_line_runs_every_shard_once(site: Path) -> None:
    """Each argument GNU parallel substitutes for {} runs its shard, and together they send
    every hash of the input once."""
    text = (SCHEDULE / "parallel.sh").read_text()
    line = next(line for line in text.splitlines() if line.startswith("parallel "))
    template, values = line.split(" ::: ")
    command = template[template.index(" reanalyzer run ") + 1:]
    sent = 0
    indexes = values.split()
    for value in indexes:
        report = _dry_run(command.replace("{}", value), site)
        assert report["shard"] == f"{value}/{len(indexes)}"
        sent += int(str(report["to_send_total"]))
    assert sent == len(HASHES) - 1


@pytest.mark.parametrize("name", ["indexed-job.yaml", "reanalyzer-merge.sbatch", "parallel.sh"])
def test_each_status_and_report_line_parses(name: str) -> None:
    """Every `reanalyzer status` or `reanalyzer report` an example runs is a valid command."""
    text = (SCHEDULE / name).read_text()
    found = re.findall(r"reanalyzer ((?:status|report) [^\n&|;]*)", text)
    assert found
    for command in found:
        args = build_parser().parse_args(shlex.split(command))
        assert len(args.job_dirs) >= 1
