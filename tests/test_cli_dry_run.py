"""The real CLI: `reanalyzer run --dry-run` on mixed inputs, --help, and its exit codes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reanalyzer.cli import build_parser, main

TOKEN = "tok-0d9e-SECRET-cli"


def digest(name: str, i: int) -> str:
    return hashlib.new(name, str(i).encode()).hexdigest()


def run_cli(
    args: list[str], cwd: Path, stdin: bytes = b"", **extra_env: str,
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REANALYZER_")}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "reanalyzer", *args], input=stdin, capture_output=True,
        cwd=cwd, env=env, timeout=60,
    )


def dry_run(args: list[str], cwd: Path, stdin: bytes = b"") -> dict[str, Any]:
    result = run_cli(["run", "--dry-run", "--report-format", "json", *args], cwd, stdin,
                     REANALYZER_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr.decode()
    assert TOKEN.encode() not in result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REANALYZER_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dry_run_in_process(
    args: list[str], capsys: pytest.CaptureFixture[str], stdin: bytes | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> dict[str, Any]:
    """The same dry run through main() in this process: faster than a subprocess."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert main(["run", "--dry-run", "--report-format", "json", *args]) == 0
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    report: dict[str, Any] = json.loads(captured.out)
    return report



def test_dry_run_on_mixed_text_gzip_and_stdin(tmp_path: Path) -> None:
    """Text, gzip and stdin inputs with every type, case, whitespace, junk and duplicates are
    counted exactly.
    """
    text = tmp_path / "a.txt"
    text.write_bytes(b"\n".join([
        digest("md5", 1).encode(),
        b"  " + digest("md5", 1).upper().encode() + b" ",  # duplicate in another case
        digest("sha1", 1).encode(),
        b"",
        b"# a comment",
        b"not a hash",
        b"\t" + digest("sha256", 1).encode() + b"\r",
        digest("sha512", 1).encode(),
        b"abc",  # no final newline
    ]))
    packed = tmp_path / "b.gz"
    packed.write_bytes(gzip.compress(b"\n".join([
        digest("sha1", 1).encode(), digest("md5", 2).encode(), b"\xff\xfe",
    ]) + b"\n"))
    stdin = f"{digest('md5', 2).upper()}\n{digest('sha256', 2)}\n\n".encode()
    report = dry_run([str(text), str(packed), "-"], tmp_path, stdin)
    assert report["inputs"] == [str(text), str(packed), "<stdin>"]
    assert (report["lines"], report["skipped"], report["records"]) == (15, 3, 12)
    assert report["to_send"] == {"md5": 2, "sha1": 1, "sha256": 2, "sha512": 1}
    assert report["to_send_total"] == 6
    assert report["requests"] == {"md5": 1, "sha1": 1, "sha256": 1, "sha512": 1}
    assert (report["duplicates"], report["invalid"]) == (3, 3)
    assert report["accounted"] is True
    assert sorted((e["source"], e["line"]) for e in report["invalid_examples"]) == sorted(
        [(str(text), 6), (str(text), 9), (str(packed), 3)]
    )
    assert sum(report["invalid_reasons"].values()) == 3
    assert report["invalid_reasons"]["not valid UTF-8"] == 1


def test_dry_run_batch_size_and_no_dedupe(
    clean_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch-size cuts requests, and --no-dedupe sends repeats instead of counting duplicates."""
    lines = [digest("sha1", i % 5) for i in range(10)]
    path = clean_cwd / "h.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = dry_run_in_process(["--batch-size", "3", "--no-dedupe", str(path)], capsys)
    assert report["to_send_total"] == 10
    assert report["duplicates"] == 0
    assert report["requests_total"] == 4
    assert report["accounted"] is True


def test_dry_run_csv(clean_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CSV input: the named column's values are counted, rows without it are invalid."""
    path = clean_cwd / "h.csv"
    path.write_text(
        "name,sha256\n"
        f'"x, y",{digest("sha256", 1)}\n'
        f'z,"{digest("sha256", 1).upper()}"\n'
        "short\n"
        f"w, {digest('md5', 1)} \n"
        "v,nope\n",
        encoding="utf-8",
    )
    report = dry_run_in_process(["--csv-column", "sha256", str(path)], capsys)
    assert report["records"] == 5
    assert report["to_send"] == {"sha256": 1, "md5": 1}
    assert (report["duplicates"], report["invalid"]) == (1, 2)
    assert report["invalid_reasons"]["row has no 'sha256' column"] == 1
    assert report["accounted"] is True


def test_dry_run_jsonl_on_stdin(
    clean_cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON lines on stdin (no INPUT given): the named field is counted, bad lines are invalid with
    their line.
    """
    stdin = "\n".join([
        json.dumps({"h": digest("md5", 1)}),
        json.dumps({"h": digest("md5", 1)}),
        "{broken",
        json.dumps({"other": 1}),
        json.dumps({"h": digest("sha512", 3)}),
    ]).encode()
    report = dry_run_in_process(["--json-field", "h"], capsys, stdin, monkeypatch)
    assert report["inputs"] == ["<stdin>"]
    assert report["to_send"] == {"md5": 1, "sha512": 1}
    assert (report["duplicates"], report["invalid"]) == (1, 2)
    assert sorted(e["line"] for e in report["invalid_examples"]) == [3, 4]
    assert report["accounted"] is True


def test_text_report(clean_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default report is text and says every record is accounted for."""
    path = clean_cwd / "h.txt"
    path.write_text(digest("md5", 1) + "\nbad\n", encoding="utf-8")
    assert main(["run", "--dry-run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was sent" in out
    assert "every record accounted for" in out


def test_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    """A wrong setting exits 2 with one line on stderr (a JSON event: no terminal) naming it,
    and no token."""
    # (A well-formed name this version does not know is sent with a warning: a v2 name asked of
    # v1 is still refused.)
    result = run_cli(["run", "--dry-run", "--analysis", "core,cuckoo", "-"], tmp_path,
                     REANALYZER_TOKEN=TOKEN, REANALYZER_BATCH_SIZE="5")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert json.loads(err)["message"].startswith("reanalyzer: error: setting analysis")
    assert "cuckoo" in err
    assert "cloud" in err
    assert TOKEN not in err
    assert result.stdout == b""


def test_missing_input_exits_3(tmp_path: Path) -> None:
    """An input that does not exist exits 3 with a one-line message naming it."""
    result = run_cli(["run", "--dry-run", str(tmp_path / "gone.txt")], tmp_path)
    assert result.returncode == 3
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert "gone.txt" in err


def run_options() -> list[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "run" in a.choices)
    run = subparsers.choices["run"]  # type: ignore[index]
    return [s for a in run._actions for s in a.option_strings]


def test_help_exits_0(clean_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`reanalyzer --help` exits 0 and names the commands and exit codes."""
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out
    assert "exit codes" in out
    assert TOKEN not in out


def test_run_help_mentions_every_option(
    clean_cwd: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`reanalyzer run --help` exits 0 and mentions every option, with its environment variable."""
    with pytest.raises(SystemExit) as caught:
        main(["run", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    options = run_options()
    for option in ["--url", "--analysis", "--job-dir", "--batch-size", "--concurrency",
                   "--rate-limit", "--dry-run", "--config", "--csv-column", "--json-field"]:
        assert option in options
    for option in options:
        assert option in out, option
    assert "REANALYZER_BATCH_SIZE" in out
    assert "default 100" in out
    assert "default )" not in out  # an empty default (the URL's) reads "none"
    assert TOKEN not in out


def test_simulate_help_gives_each_default(
    clean_cwd: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--help"])
    assert caught.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 1000)" in out  # --samples
    assert "(default: 0.1)" in out  # --share-absent
    assert TOKEN not in out


def test_in_process_missing_input_returns_3(
    clean_cwd: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """main() maps an InputError to exit code 3 and a one-line message (plain on a terminal,
    a JSON event in JSON logs)."""
    assert main(["run", "--dry-run", str(clean_cwd / "nope")]) == 3
    err = capsys.readouterr().err
    assert "reanalyzer: error: cannot open input" in err
    assert err.count("\n") == 1


def test_an_invalid_lines_reason_names_its_cause_whole(tmp_path: Path) -> None:
    """A long line whose first non-hex character is past the quoted part ("<sha256>,file.exe")
    names that character and where it is; only the quote of the line is cut."""
    line = "ab" * 32 + ",malware-sample-from-the-export.exe"
    (tmp_path / "export.txt").write_text(digest("sha1", 1) + "\n" + line + "\n")
    report = dry_run([str(tmp_path / "export.txt")], tmp_path)
    (example,) = report["invalid_examples"]
    reason = example["reason"]
    assert reason.startswith("not a hash (not hexadecimal): ',' at character 65 of '…")
    assert ",malware-sample" in reason
    assert report["invalid_reasons"] == {"not a hash (not hexadecimal)": 1}
