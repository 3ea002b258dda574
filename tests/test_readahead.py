"""Reading ahead of the loop: in a forked child (the usual case) or in a thread."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reanalyzer.errors import InputError
from reanalyzer.read import readahead
from reanalyzer.read.readahead import End, ForkedReader, ThreadReader

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


async def drain(reader: readahead.ReadAhead[object]) -> tuple[list[object], object]:
    """Every item, then what ended them (END or an exception)."""
    items: list[object] = []
    while True:
        item = await asyncio.wait_for(reader.get(), timeout=10)
        if isinstance(item, (End, BaseException)):
            return items, item
        items.append(item)


@pytest.mark.parametrize("kind", [ForkedReader, ThreadReader])
async def test_items_arrive_in_order_then_the_end(kind: type) -> None:
    big = [b"x" * 300_000, list(range(50_000))]  # larger than a pipe's default buffer
    reader = kind(iter([1, "two", *big, {"three": 3}]), 2)
    try:
        items, last = await drain(reader)
    finally:
        reader.stop()
    assert items == [1, "two", *big, {"three": 3}]
    assert isinstance(last, End)


def failing() -> Iterator[int]:
    yield 1
    raise InputError("cannot read in.txt: boom")


@pytest.mark.parametrize("kind", [ForkedReader, ThreadReader])
async def test_an_error_while_reading_reaches_the_loop_as_itself(kind: type) -> None:
    reader = kind(failing(), 4)
    try:
        items, last = await drain(reader)
    finally:
        reader.stop()
    assert items == [1]
    assert isinstance(last, InputError)
    assert str(last) == "cannot read in.txt: boom"


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickle calls it with one argument: breaks
        super().__init__(f"{a}/{b}")


def unpicklable() -> Iterator[int]:
    yield 1
    raise Unpicklable(1, 2)


async def test_an_error_that_cannot_cross_the_pipe_keeps_its_words() -> None:
    reader = ForkedReader(unpicklable(), 4)
    try:
        _, last = await drain(reader)
    finally:
        reader.stop()
    assert isinstance(last, InputError)
    assert "Unpicklable: 1/2" in str(last)


def endless(delay: float = 0.0) -> Iterator[int]:
    n = 0
    while True:
        n += 1
        if delay:
            time.sleep(delay)
        yield n


async def test_a_child_that_dies_is_an_input_error_that_says_to_resume() -> None:
    reader = ForkedReader(endless(0.01), 4)
    try:
        assert await asyncio.wait_for(reader.get(), timeout=10) == 1
        assert reader._pid is not None
        os.kill(reader._pid, signal.SIGKILL)
        _, last = await drain(reader)
    finally:
        reader.stop()
    assert isinstance(last, InputError)
    assert "killed by signal 9" in str(last)
    assert "resume" in str(last)


async def test_stop_ends_the_child_and_reaps_it() -> None:
    reader = ForkedReader(endless(), 4)
    assert await asyncio.wait_for(reader.get(), timeout=10) == 1
    pid = reader._pid
    assert pid is not None
    reader.stop()
    with pytest.raises(ChildProcessError):  # gone and reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222  # WNOHANG: never blocks


def counting(path: Path) -> Iterator[bytes]:
    with path.open("ab", buffering=0) as count:
        while True:
            count.write(b".")
            yield b"y" * 100_000


async def test_the_child_reads_only_a_bounded_way_ahead(tmp_path: Path) -> None:
    """While the loop takes nothing, the child blocks once the queue and the pipe are full."""
    produced = tmp_path / "produced"
    reader = ForkedReader(counting(produced), 4)
    try:
        assert len(await asyncio.wait_for(reader.get(), timeout=10)) == 100_000  # type: ignore[arg-type]
        for _ in range(50):  # 0.5 s for the child to run as far ahead as it can
            await asyncio.sleep(0.01)
        ahead = produced.stat().st_size
        # Up to 4 waiting plus what one 1 MiB read brought (~10), ~10 in the 1 MiB pipe, one
        # being written: bounded, far from endless
        assert ahead <= 30
        await asyncio.wait_for(reader.get(), timeout=10)  # taking one lets it go on
    finally:
        reader.stop()


async def test_a_threaded_process_reads_in_a_thread() -> None:
    """Forking copies one thread: with another one running, reading stays in a thread."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        reader = readahead.start(iter([1]))
        reader.stop()
    finally:
        stop.set()
        other.join()
    assert isinstance(reader, ThreadReader)


CHILD_OF_KILLED_PARENT = textwrap.dedent("""
    import asyncio, time
    from reanalyzer.read.readahead import ForkedReader

    def endless():
        yield 0
        time.sleep(3600)  # like a read of a stdin that never ends: no write to fail on
        yield 1

    async def main():
        reader = ForkedReader(endless(), 4)
        await reader.get()
        print(reader._pid, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


def test_the_child_dies_with_a_parent_killed_hard() -> None:
    """kill -9 of the runner leaves no reader behind (it would hold the inputs, and the lock)."""
    with subprocess.Popen([sys.executable, "-c", CHILD_OF_KILLED_PARENT],
                          stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
            parent.kill()
            parent.wait(10)
        finally:
            if parent.poll() is None:
                parent.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent's reaping is left
