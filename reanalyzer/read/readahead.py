"""Reading ahead of the event loop: the front's CPU-heavy half runs off the loop's thread.

Reading, sorting and dedupe cost about as much per hash as sending and recording do, so they
run in a child process where the platform forks (the loop's process then keeps a core of its
own for answers: ~2x the hashes per second of a thread, which shares the GIL), else in a thread.

Both give the loop the same items, in order, through ``get()``: whatever the iterator yields, an
exception it raised (the loop raises it again), or ``END``. At most ``depth`` items wait.

Over 300 lines for one concern: the two readers must keep one contract (order, errors, END,
stop), and the forked one needs both ends of its pipe here, the child's set-up (sockets closed,
death with its parent, signals) beside the parent's reaping, so that a change to one end is
seen with the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pickle
import signal
import stat
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

import structlog

from reanalyzer.errors import InputError

log = structlog.get_logger("reanalyzer.read.readahead")

T = TypeVar("T")
DEPTH = 4  # items read ahead: enough to keep the loop busy, little memory


class End:
    """The iterator is exhausted."""


END = End()


T_co = TypeVar("T_co", covariant=True)


class ReadAhead(Protocol[T_co]):
    peak_rss_kib: int | None  # a child's peak memory once it has ended; None: a thread

    async def get(self) -> T_co | BaseException | End: ...

    def stop(self) -> None: ...


def start(items: Iterator[T], depth: int = DEPTH) -> ReadAhead[T]:
    """Run `items` ahead of the loop: in a child process if this one can fork safely."""
    if _can_fork():
        log.debug("front.reading_ahead", where="process")
        return ForkedReader(items, depth)
    log.debug("front.reading_ahead", where="thread")
    return ThreadReader(items, depth)


def _can_fork() -> bool:
    # A fork copies one thread only: a lock another thread holds would stay held in the child
    # forever. So fork only while this process runs a single thread (always so in the CLI).
    return hasattr(os, "fork") and _threads() == 1


def _threads() -> int:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return threading.active_count()


class ThreadReader(Generic[T]):
    """A thread runs the iterator into the loop's queue.

    The thread never creates a coroutine: it hands items over with call_soon_threadsafe and waits
    for room on a semaphore that the loop releases as it takes items, so stopping is always clean.
    """

    def __init__(self, items: Iterator[T], depth: int = DEPTH) -> None:
        self.queue: asyncio.Queue[T | BaseException | End] = asyncio.Queue()
        self._items = items
        self._loop = asyncio.get_running_loop()
        self._room = threading.Semaphore(depth)
        self._stop = threading.Event()
        self.peak_rss_kib: int | None = None  # the process's own: nothing of a thread's alone
        threading.Thread(target=self._work, name="reanalyzer-reader", daemon=True).start()

    async def get(self) -> T | BaseException | End:
        item = await self.queue.get()
        self._room.release()
        return item

    def stop(self) -> None:
        self._stop.set()

    def _put(self, item: T | BaseException | End) -> bool:
        while not self._room.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        if self._stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the loop, which raises it there
            self._put(exc)
            return
        self._put(END)


_FRAME = struct.Struct("<Q")  # each item goes down the pipe as its pickle's length, then it
_PIPE_BYTES = 1 << 20  # room for about one block in the pipe itself (Linux; else the default)
_F_SETPIPE_SZ = 1031


class ForkedReader(Generic[T]):
    """A forked child runs the iterator and pickles each item down a pipe to the loop.

    The child inherits the iterator as it stands (open inputs, the dedupe set of a resumed job)
    and owns it from then on: the parent never touches it again. Backpressure is the pipe's: the
    loop stops reading while `depth` items wait, the pipe fills, and the child's write blocks.
    The child dies with the parent (PR_SET_PDEATHSIG on Linux; elsewhere its next write fails),
    ignores Ctrl-C (the parent decides when reading stops) and never runs the parent's exit code.
    """

    def __init__(self, items: Iterator[T], depth: int = DEPTH) -> None:
        self.queue: asyncio.Queue[T | BaseException | End] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._depth = depth
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        # The objects alive at the fork leave the collector's generations: a collection in
        # the child would otherwise write to every one of them and so copy the pages both
        # processes share (a resumed job's parent holds its scan of the log by then).
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child: it must never return from here
            try:
                os.close(read_fd)
                _child(items, write_fd, parent)
            finally:
                os._exit(0)
        gc.unfreeze()
        os.close(write_fd)
        self._pid: int | None = pid
        self._fd: int | None = read_fd
        os.set_blocking(read_fd, False)
        self._header = bytearray(_FRAME.size)
        self._frame: bytearray | None = None  # the frame being read, once its size is known
        self._got = 0  # bytes of the header or frame read so far
        self._reading = False
        self._ended = False
        self.peak_rss_kib: int | None = None  # the child's, once it has ended (Linux: KiB)
        self._resume()

    async def get(self) -> T | BaseException | End:
        item = await self.queue.get()
        self._resume()
        return item

    def stop(self) -> None:
        self._pause()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            if not self._ended:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            self._reap(block=True)

    def _resume(self) -> None:
        if (
            not self._reading
            and not self._ended
            and self._fd is not None
            and self.queue.qsize() < self._depth
        ):
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _pause(self) -> None:
        if self._reading and self._fd is not None:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def _readable(self) -> None:
        # Each frame is read straight into a buffer of its own size and unpickled from there:
        # no copies of a megabyte-sized block through an intermediate buffer.
        assert self._fd is not None
        while True:
            if self._frame is None:
                view = memoryview(self._header)[self._got :]
            else:
                view = memoryview(self._frame)[self._got :]
            try:
                got = os.readv(self._fd, [view])
            except BlockingIOError:
                return
            if not got:
                self._finish(self._death())
                return
            self._got += got
            if got < len(view):
                return  # the pipe is empty for now
            self._got = 0
            if self._frame is None:
                self._frame = bytearray(_FRAME.unpack(self._header)[0])  # never 0: a pickle
                continue
            item = pickle.loads(self._frame)  # from our own child
            self._frame = None
            if isinstance(item, (End, BaseException)):
                self._finish(item)
                return
            self.queue.put_nowait(item)
            if self.queue.qsize() >= self._depth:
                self._pause()
                return

    def _finish(self, last: BaseException | End) -> None:
        self._ended = True
        self._pause()
        self.queue.put_nowait(last)
        self._reap(block=isinstance(last, End))

    def _death(self) -> BaseException:
        """What to tell of a child that closed the pipe without saying it was done."""
        status = self._reap(block=True)
        if status is not None and os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        elif status is not None and os.WIFEXITED(status):
            how = f"exited with status {os.WEXITSTATUS(status)}"
        else:
            how = "ended"
        return InputError(
            f"the process reading the inputs {how} before the end of the input; "
            "run the same command again to resume"
        )

    def _reap(self, *, block: bool) -> int | None:
        if self._pid is None:
            return None
        try:
            pid, status, usage = os.wait4(self._pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped already
            self._pid = None
            return None
        if pid == 0:
            return None
        self._pid = None
        self.peak_rss_kib = usage.ru_maxrss
        return status


def _child(items: Iterator[object], fd: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The parent loop's wakeup fd: a signal here must not wake it. (ValueError: forked from
    # a thread other than the main one, which had none set.)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    _die_with(parent)
    _close_sockets(keep=fd)
    if sys.platform == "linux":
        try:
            import fcntl

            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means more wake-ups
    try:
        for item in items:
            _send(fd, item)
    except BrokenPipeError:
        return  # the parent is gone or stopped reading: nothing left to do
    except BaseException as exc:
        _send_error(fd, exc)
        return
    _send(fd, END)


def _close_sockets(keep: int) -> None:
    """Close the parent's sockets (the appliance's connections, the loop's self-pipe): a copy
    held open here would keep a connection from closing when the parent closes it."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return  # not Linux: the copies close when the child ends
    for fd in fds:
        if fd < 3 or fd == keep:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            pass  # the listing's own descriptor, gone already


def _send_error(fd: int, exc: BaseException) -> None:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # an exception that does not survive pickling: keep its words
        exc = InputError(f"reading the inputs failed: {type(exc).__name__}: {exc}")
    with contextlib.suppress(BrokenPipeError):
        _send(fd, exc)


def _send(fd: int, item: object) -> None:
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _die_with(parent: int) -> None:
    """Ask the kernel to kill this child when its parent dies (a kill -9 included)."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(0)
