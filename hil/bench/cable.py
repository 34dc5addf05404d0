"""The serial cable, or a stand-in made of pseudo-terminals for tests and CI.

:class:`PtyCable`: two pseudo-terminal pairs joined by a relay paced at the line rate
(8N1: baud/10 bytes/s), each end behind a symlink, and either end can be unplugged and
plugged back in. Open the ends with ``serial://PATH?baud=...`` as a real cable.

>>> import tempfile, pathlib, os
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> cable = PtyCable(d / "board", d / "bench", baud=None)
>>> a, b = os.open(d / "board", os.O_RDWR | os.O_NOCTTY), os.open(d / "bench", os.O_RDWR)
>>> _ = os.write(a, b"ping"); cable.wait_idle(); os.read(b, 4)
b'ping'
>>> os.close(a); os.close(b); cable.close()
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import tty
from pathlib import Path

from hil.bench.errors import HilError

log = logging.getLogger(__name__)

DEFAULT_BAUD = 921600


def line_rate_bytes_s(baud: int) -> float:
    """Bytes per second a UART carries at ``baud`` (8N1: ten bits a byte).

    >>> line_rate_bytes_s(921600)
    92160.0
    """
    return baud / 10.0


class _End:
    """One end of the :class:`PtyCable`: a pty pair and the symlink naming its slave."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.master = -1
        self.slave = -1
        self.generation = 0
        self.plugged = False

    def plug(self) -> None:
        with self.lock:
            try:
                master, slave = os.openpty()
            except OSError as exc:
                raise HilError(f"cannot make a pseudo-terminal: {exc.strerror}") from exc
            tty.setraw(slave)
            os.set_blocking(master, False)
            tmp = self.path.with_name(self.path.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(self.path)
            self.master, self.slave = master, slave
            self.generation += 1
            self.plugged = True

    def unplug(self) -> None:
        with self.lock:
            if not self.plugged:
                return
            self.path.unlink(missing_ok=True)
            for fd in (self.master, self.slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.master = self.slave = -1
            self.generation += 1
            self.plugged = False


class PtyCable:
    """A serial cable made of two pty pairs and a relay (see the module docstring).

    ``board_path`` and ``bench_path`` become symlinks to the two slave devices; open them
    with ``serial://PATH?baud=...``. ``baud=None`` relays as fast as it can (no pacing).
    :meth:`unplug` closes one end's pty and removes its symlink (the program holding it
    sees the port vanish); :meth:`plug` makes a fresh pty at the same path. Bytes sent
    towards an unplugged end are dropped (``stats["dropped_bytes"]``).
    """

    def __init__(
        self,
        board_path: Path,
        bench_path: Path,
        *,
        baud: int | None = DEFAULT_BAUD,
        chunk: int = 512,
    ) -> None:
        self.ends = {"board": _End(Path(board_path)), "bench": _End(Path(bench_path))}
        self.baud = baud
        self.chunk = chunk
        self.stats = {"board_to_bench": 0, "bench_to_board": 0, "dropped_bytes": 0, "unplugs": 0}
        self._stop = threading.Event()
        self._busy = {"board": 0, "bench": 0}
        for end in self.ends.values():
            end.plug()
        self._threads = [
            threading.Thread(
                target=self._relay, args=("board", "bench"), daemon=True, name="cable-up"
            ),
            threading.Thread(
                target=self._relay, args=("bench", "board"), daemon=True, name="cable-down"
            ),
        ]
        for t in self._threads:
            t.start()

    def unplug(self, end: str = "board") -> None:
        """Pull the cable at ``end`` ("board" or "bench")."""
        self._end(end).unplug()
        self.stats["unplugs"] += 1
        log.info("cable unplugged at the %s end", end)

    def plug(self, end: str = "board") -> None:
        """Plug ``end`` back in (a fresh pty behind the same path)."""
        self._end(end).plug()
        log.info("cable plugged back in at the %s end", end)

    def _end(self, name: str) -> _End:
        if name not in self.ends:
            raise HilError(f"no cable end {name!r}: use 'board' or 'bench'")
        return self.ends[name]

    def wait_idle(self, timeout_s: float = 2.0) -> None:
        """Wait until the relay has passed on everything it read (tests)."""
        deadline = time.monotonic() + timeout_s
        time.sleep(0.02)
        while any(self._busy.values()) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _relay(self, src_name: str, dst_name: str) -> None:
        src, dst = self.ends[src_name], self.ends[dst_name]
        key = f"{src_name}_to_{dst_name}"
        rate = None if self.baud is None else line_rate_bytes_s(self.baud)
        free_at = time.monotonic()
        while not self._stop.is_set():
            fd, gen = src.master, src.generation
            if fd < 0:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
            except (OSError, ValueError):
                continue
            if not ready:
                continue
            with src.lock:
                if src.generation != gen:
                    continue
                try:
                    data = os.read(fd, self.chunk)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # EIO: nobody holds the slave open
            if not data:
                self._stop.wait(0.01)
                continue
            self._busy[src_name] = 1
            if rate is not None:  # the bytes take their time on the wire
                now = time.monotonic()
                free_at = max(free_at, now) + len(data) / rate
                if free_at > now:
                    time.sleep(free_at - now)
            self._deliver(dst, data)
            self.stats[key] += len(data)
            self._busy[src_name] = 0

    def _deliver(self, dst: _End, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            with dst.lock:
                fd = dst.master
                if fd < 0:
                    self.stats["dropped_bytes"] += len(view)
                    return
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.stats["dropped_bytes"] += len(view)
                    return
            if time.monotonic() > deadline:  # the receiver stopped reading: overrun
                self.stats["dropped_bytes"] += len(view)
                return
            time.sleep(0.002)

    def close(self) -> None:
        """Stop the relay and remove both ptys."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        for end in self.ends.values():
            end.unplug()


__all__ = ["DEFAULT_BAUD", "PtyCable", "line_rate_bytes_s"]
