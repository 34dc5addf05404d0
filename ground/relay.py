"""Several ground processes on one spacecraft link: the first owns it, later ones relay.

A link has one FOP-1 (frame numbers, retransmissions), one SDLS sequence number and,
over UDP, one peer address the spacecraft answers. Two ground processes that each open
it fight: each one's Unlock restarts the other's COP-1, their frame and SDLS numbers
collide, and the spacecraft sends its downlink to whichever spoke last (measured: a
`gnomon ground send` while the console was open left the console unable to complete any
command). So ground processes on one host share a link instead, as the operators of a
real ground system share its one station:

* the first :class:`~ground.station.GroundStation` on a link URL **owns** it: it claims
  ``link-<hash of the URL>.lock`` in the state directory (an exclusive ``flock`` that
  the kernel releases when the process ends, however it ends) and serves a relay on
  127.0.0.1;
* a later station on the same URL (``gnomon ground send`` while the console is open) is
  its **guest**: it takes its TC sequence counts from the owner (so request ids never
  collide), hands the owner its TC packets (they go up through the owner's SDLS and
  COP-1, and the owner tracks and archives them too) and receives a copy of every TM
  packet the owner decodes, so its own verification stages, telemetry and events work
  as usual.

When the owner ends, its guests are told (``closed_reason``) and their sends fail with a
:class:`~ground.errors.StationError` that says so; a new ground process then owns the
link. The relay listens on the loopback address only, and a guest must show a random
token written in the lock file (mode 0600), so only the owner's user can use it.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     first, second = LinkClaim(d, "udp://127.0.0.1:10025"), LinkClaim(d, "udp://127.0.0.1:10025")
...     print(first.acquire(), second.acquire())  # the second process would be a guest
...     first.release()
...     print(second.acquire())  # the first has gone: the next one owns the link
...     second.release()
True False
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ground.errors import GroundError, StationError

try:  # POSIX; elsewhere every station owns its link (no sharing)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">cI")
_TAG = struct.Struct(">I")
_MAX_MESSAGE = 1 << 20
#: Seconds a guest waits for the owner's answer to a request.
REQUEST_TIMEOUT_S = 5.0
#: Seconds the owner lets one guest take to accept a TM packet before dropping it.
_SEND_TIMEOUT_S = 2.0


def claim_path(directory: str | Path, url: str) -> Path:
    """The lock file of ``url`` in ``directory`` (one per link URL).

    >>> claim_path("/tmp", "udp://127.0.0.1:10025").name
    'link-7d96cd4ff057.lock'
    """
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(directory).expanduser() / f"link-{digest}.lock"


class LinkClaim:
    """An exclusive claim on a link URL among the ground processes of this host."""

    def __init__(self, directory: str | Path, url: str) -> None:
        self.url = url
        self.path = claim_path(directory, url)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the claim."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the claim; False if another process holds it."""
        if self._fd is not None:
            return True
        if fcntl is None:  # pragma: no cover - no flock: no sharing
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StationError(
                f"cannot create the ground state directory {self.path.parent}: "
                f"{exc.strerror or exc}"
            ) from None
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StationError(
                    f"cannot open the link claim {self.path}: {exc.strerror or exc}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            try:  # the file we locked must still be the one at the path (see release)
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)
        raise StationError(f"cannot claim {self.path}: it keeps being replaced")

    def publish(self, info: dict[str, Any]) -> None:
        """Write the owner's relay address (and token) into the claim file."""
        if self._fd is None:
            return
        data = json.dumps({**info, "url": self.url}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def read_owner(self, wait_s: float = 3.0) -> dict[str, Any]:
        """The owner's published relay address; :class:`StationError` if none appears."""
        deadline = time.monotonic() + wait_s
        last = ""
        while True:
            try:
                text = self.path.read_text(encoding="utf-8")
                doc = json.loads(text) if text else {}
            except FileNotFoundError:
                doc = {}
            except (OSError, ValueError) as exc:
                last = str(exc)
                doc = {}
            if isinstance(doc, dict) and isinstance(doc.get("port"), int):
                return doc
            if time.monotonic() >= deadline:
                why = f" ({last})" if last else ""
                raise StationError(
                    f"another ground process holds {self.url} but publishes no relay in "
                    f"{self.path}{why}; is it still starting? try again"
                )
            time.sleep(0.05)

    def release(self) -> None:
        """Give the claim up (the file goes first, so nobody locks a stale one)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None


# ------------------------------------------------------------------------ wire
def _send_message(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def _recv_message(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > _MAX_MESSAGE:
        raise ConnectionError(f"relay message of {length} bytes is too long")
    return kind, _recv_exact(sock, length)


# ------------------------------------------------------------------------ the owner
class RelayServer:
    """The owner's side: serves guests on 127.0.0.1 (one thread per guest).

    ``next_seq()`` hands out a TC sequence count, ``send_tc(packet, bypass)`` sends a
    guest's TC on the owner's link (raising :class:`GroundError` with the reason when it
    cannot); both are called from the guest's thread.
    """

    def __init__(
        self,
        url: str,
        spacecraft_id: int,
        next_seq: Callable[[], int],
        send_tc: Callable[[bytes, bool], None],
        program: str = "",
    ) -> None:
        self.url = url
        self.spacecraft_id = spacecraft_id
        self._next_seq = next_seq
        self._send_tc = send_tc
        self.program = program
        self.token = secrets.token_hex(16)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self._guests: dict[socket.socket, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = {
            "guests": 0,
            "guests_refused": 0,
            "guests_dropped": 0,
            "tcs_relayed": 0,
            "tcs_refused": 0,
            "tm_packets_relayed": 0,
        }
        self._thread = threading.Thread(target=self._accept, name="ground-relay", daemon=True)

    def info(self) -> dict[str, Any]:
        """What a guest needs to find and join this relay."""
        return {
            "port": self.port,
            "token": self.token,
            "pid": os.getpid(),
            "program": self.program,
            "spacecraft_id": self.spacecraft_id,
            "since_unix": round(time.time(), 3),
        }

    def start(self) -> None:
        """Accept guests (in a thread)."""
        self._thread.start()

    @property
    def guests(self) -> int:
        """Guests connected now."""
        with self._lock:
            return len(self._guests)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve, args=(conn,), name="ground-relay-guest", daemon=True
            ).start()

    def _refuse(self, conn: socket.socket, reason: str) -> None:
        self.stats["guests_refused"] += 1
        log.warning("relay: refused a guest: %s", reason)
        with contextlib.suppress(OSError):
            _send_message(conn, b"R", json.dumps({"reason": reason}).encode())
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_TIMEOUT_S)
        try:
            kind, payload = _recv_message(conn)
            hello = json.loads(payload) if kind == b"H" else {}
        except (OSError, ConnectionError, ValueError):
            conn.close()
            return
        if not isinstance(hello, dict) or not secrets.compare_digest(
            str(hello.get("token", "")), self.token
        ):
            self._refuse(conn, "wrong relay token (not the owner's user?)")
            return
        if hello.get("spacecraft_id") != self.spacecraft_id:
            self._refuse(
                conn,
                f"this link flies spacecraft {self.spacecraft_id}, the guest's key file "
                f"says {hello.get('spacecraft_id')}",
            )
            return
        lock = threading.Lock()
        conn.settimeout(_SEND_TIMEOUT_S)
        with lock:
            try:
                _send_message(conn, b"W", json.dumps(self.info() | {"url": self.url}).encode())
            except OSError:
                conn.close()
                return
        with self._lock:
            self._guests[conn] = lock
        self.stats["guests"] += 1
        who = f"pid {hello.get('pid')} ({hello.get('program') or 'a ground process'})"
        log.info("relay: %s joined %s as a guest", who, self.url)
        # the socket keeps its send timeout (a guest that stops reading must not hold the
        # owner up): wait for a request with select, then read it whole
        try:
            while not self._stop.is_set():
                if not select.select([conn], [], [], 0.5)[0]:
                    continue
                kind, payload = _recv_message(conn)
                reply = self._handle(kind, payload)
                if reply is not None:
                    with lock:
                        _send_message(conn, *reply)
        except (OSError, ConnectionError, ValueError):  # ValueError: closed meanwhile
            pass
        finally:
            self._drop(conn)
            log.info("relay: %s left", who)

    def _handle(self, kind: bytes, payload: bytes) -> tuple[bytes, bytes] | None:
        if kind == b"S" and len(payload) == _TAG.size:
            try:
                seq = self._next_seq()
                doc: dict[str, Any] = {"seq": seq}
            except GroundError as exc:
                doc = {"error": str(exc)}
            return b"Q", payload + json.dumps(doc).encode()
        if kind == b"T" and len(payload) > _TAG.size:
            tag, flags, tc = payload[: _TAG.size], payload[_TAG.size], payload[_TAG.size + 1 :]
            try:
                self._send_tc(tc, bool(flags & 1))
                self.stats["tcs_relayed"] += 1
                doc = {"ok": True}
            except GroundError as exc:
                self.stats["tcs_refused"] += 1
                doc = {"ok": False, "error": str(exc)}
            return b"A", tag + json.dumps(doc).encode()
        return None  # unknown messages are ignored (a newer guest)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            self._guests.pop(conn, None)
        with contextlib.suppress(OSError):
            conn.close()

    def broadcast(self, packets: list[bytes]) -> None:
        """Give every guest a copy of these TM packets; a guest that stalls is dropped."""
        if not packets:
            return
        with self._lock:
            guests = list(self._guests.items())
        if not guests:
            return
        data = b"".join(_HEADER.pack(b"P", len(p)) + p for p in packets)
        for conn, lock in guests:
            try:
                with lock:
                    conn.sendall(data)
                self.stats["tm_packets_relayed"] += len(packets)
            except OSError as exc:
                self.stats["guests_dropped"] += 1
                log.warning("relay: dropped a guest that stopped reading: %s", exc)
                self._drop(conn)

    def close(self) -> None:
        """Stop serving; guests see the connection close."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            guests = list(self._guests)
            self._guests.clear()
        for conn in guests:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


# ------------------------------------------------------------------------ a guest
class RelayClient:
    """A guest's side: TCs and sequence counts to the owner, TM packets from it."""

    def __init__(
        self, owner: dict[str, Any], *, url: str, spacecraft_id: int, program: str = ""
    ) -> None:
        self.url = url
        self.owner = owner
        self.stats = {"tm_packets": 0, "tcs_sent": 0, "tcs_refused": 0}
        self.closed_reason: str | None = None
        self._packets: queue.Queue[bytes] = queue.Queue()
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._tag = 0
        self._send_lock = threading.Lock()
        who = f"pid {owner.get('pid')} ({owner.get('program') or 'a ground process'})"
        self.owner_text = who
        try:
            self._sock = socket.create_connection(
                ("127.0.0.1", int(owner["port"])), timeout=REQUEST_TIMEOUT_S
            )
        except (OSError, KeyError, ValueError) as exc:
            raise StationError(
                f"{url} is owned by {who}, but its relay does not answer ({exc}); "
                "if that process hangs, stop it"
            ) from None
        try:
            hello = {
                "token": owner.get("token"),
                "pid": os.getpid(),
                "program": program,
                "spacecraft_id": spacecraft_id,
            }
            _send_message(self._sock, b"H", json.dumps(hello).encode())
            kind, payload = _recv_message(self._sock)
        except (OSError, ConnectionError) as exc:
            self._sock.close()
            raise StationError(f"the relay of {who} on {url} failed: {exc}") from None
        if kind != b"W":
            self._sock.close()
            reason = "no reason given"
            with contextlib.suppress(ValueError, AttributeError):
                reason = str(json.loads(payload).get("reason", reason))
            raise StationError(f"{who} refused to share {url}: {reason}")
        self._thread = threading.Thread(target=self._read, name="ground-relay-in", daemon=True)
        self._thread.start()

    @property
    def status(self) -> str:
        """``guest`` while the owner serves us, ``closed`` after."""
        return "closed" if self.closed_reason is not None else "guest"

    def _read(self) -> None:
        try:
            while self.closed_reason is None:
                if not select.select([self._sock], [], [], 0.5)[0]:
                    continue
                kind, payload = _recv_message(self._sock)
                if kind == b"P":
                    self._packets.put(payload)
                elif kind in (b"A", b"Q") and len(payload) >= _TAG.size:
                    (tag,) = _TAG.unpack(payload[: _TAG.size])
                    try:
                        doc = json.loads(payload[_TAG.size :])
                    except ValueError:
                        doc = {"error": "unreadable answer from the owner"}
                    with self._cond:
                        self._replies[tag] = doc if isinstance(doc, dict) else {}
                        self._cond.notify_all()
        except (OSError, ConnectionError, ValueError):  # ValueError: closed meanwhile
            pass
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = (
                    f"the ground process that owns {self.url} ({self.owner_text}) has ended; "
                    "restart this one to own the link"
                )
                log.warning("%s", self.closed_reason)
            self._cond.notify_all()

    def _request(self, kind: bytes, body: bytes) -> dict[str, Any]:
        if self.closed_reason is not None:
            raise StationError(self.closed_reason)
        with self._cond:
            self._tag = (self._tag + 1) & 0xFFFF_FFFF
            tag = self._tag
        try:
            with self._send_lock:
                _send_message(self._sock, kind, _TAG.pack(tag) + body)
        except OSError as exc:
            raise StationError(f"cannot reach the owner of {self.url}: {exc}") from None
        with self._cond:
            got = self._cond.wait_for(
                lambda: tag in self._replies or self.closed_reason is not None,
                REQUEST_TIMEOUT_S,
            )
            if tag in self._replies:
                return self._replies.pop(tag)
        if self.closed_reason is not None:
            raise StationError(self.closed_reason)
        assert not got
        raise StationError(
            f"the owner of {self.url} ({self.owner_text}) did not answer in {REQUEST_TIMEOUT_S:g} s"
        )

    def next_seq(self) -> int:
        """A TC sequence count from the owner (unique among all its guests and itself)."""
        doc = self._request(b"S", b"")
        seq = doc.get("seq")
        if not isinstance(seq, int):
            raise StationError(f"the owner of {self.url} gave no sequence count: {doc}")
        return seq

    def send_tc(self, tc: bytes, bypass: bool = False) -> None:
        """Have the owner send ``tc``; :class:`StationError` with its reason if it cannot."""
        doc = self._request(b"T", bytes([1 if bypass else 0]) + tc)
        if not doc.get("ok"):
            self.stats["tcs_refused"] += 1
            raise StationError(f"the owner of {self.url} could not send it: {doc.get('error')}")
        self.stats["tcs_sent"] += 1

    def recv_packets(self, timeout_s: float) -> list[bytes]:
        """TM packets relayed so far, waiting up to ``timeout_s`` for the first."""
        out: list[bytes] = []
        try:
            out.append(self._packets.get(timeout=max(0.0, timeout_s)))
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._packets.get_nowait())
            except queue.Empty:
                break
        self.stats["tm_packets"] += len(out)
        return out

    def close(self) -> None:
        """Leave the relay."""
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = "this guest closed"
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()


__all__ = ["REQUEST_TIMEOUT_S", "LinkClaim", "RelayClient", "RelayServer", "claim_path"]
