"""Two CFDP entities over a simulated link: lossy, rate-limited, delayed, with LOS windows.

The link carries space packets (one PDU each) both ways at a bit rate; each packet is
lost with probability ``loss`` (the draws come from one seeded generator). During an LOS
nothing is sent, packets in flight are lost, and neither entity is stepped, so its CFDP
contact clock stops (docs/ccsds.md, "CFDP"). Used by the CFDP tests and by
``gnomon bench cfdp``; the real SITL link carries the same packets in TC/TM frames.

>>> r = run_transfer(size=20_000, acknowledged=True, loss=0.05, seed=3)
>>> r.identical, r.state
(True, 'finished')
"""

from __future__ import annotations

import hashlib
import heapq
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fsw.ccsds.cfdp import UPLINK_MAX_PDU, CfdpConfig, CfdpEntity
from fsw.ccsds.spacepacket import PacketType


class SimLink:
    """One direction of the link: ``pump`` sends what the rate allows, ``deliver``
    hands over what has arrived."""

    def __init__(self, rng: random.Random, loss: float, rate_bps: float, delay_s: float) -> None:
        self.rng = rng
        self.loss = loss
        self.bytes_per_s = rate_bps / 8.0
        self.delay_s = delay_s
        self.credit = 0.0
        self.flight: list[tuple[float, int, bytes]] = []
        self.n = 0
        self.sent = 0
        self.sent_bytes = 0
        self.lost = 0

    def pump(self, src: CfdpEntity, now_s: float, dt_s: float) -> None:
        """Send the bytes ``dt_s`` of link time allow (the entity makes them on demand)."""
        self.credit = min(self.credit + self.bytes_per_s * dt_s, self.bytes_per_s * dt_s * 4)
        if self.credit < 1.0:
            return
        for pkt in src.take(now_s, int(self.credit)):
            self.credit -= len(pkt)
            self.sent += 1
            self.sent_bytes += len(pkt)
            if self.rng.random() < self.loss:
                self.lost += 1
                continue
            self.n += 1
            heapq.heappush(self.flight, (now_s + self.delay_s, self.n, pkt))

    def deliver(self, dst: CfdpEntity, now_s: float) -> None:
        while self.flight and self.flight[0][0] <= now_s:
            dst.receive(heapq.heappop(self.flight)[2])

    def cut(self) -> None:
        """LOS: packets in the air are lost, the unused credit too."""
        self.lost += len(self.flight)
        self.flight.clear()
        self.credit = 0.0


@dataclass(slots=True)
class TransferResult:
    """What one simulated transfer did. ``goodput`` = file bits / (contact time until the
    receiver had every byte with its checksum verified x downlink rate); ``goodput_closed``
    counts the contact time until both ends closed the transaction (the Finished/ACK
    handshake after delivery included)."""

    identical: bool
    state: str
    condition: str
    size: int
    contact_s: float
    sim_s: float
    goodput: float
    goodput_closed: float
    pdus_down: int
    pdus_lost_down: int
    pdus_up: int
    pdus_lost_up: int
    fd_retransmitted: int
    naks: int


def run_transfer(
    *,
    size: int,
    acknowledged: bool,
    loss: float = 0.0,
    seed: int = 1,
    down_bps: float = 1_000_000.0,
    up_bps: float = 64_000.0,
    delay_s: float = 0.06,
    los: Sequence[tuple[float, float]] = (),
    los_at_first_eof: float | None = None,
    dt_s: float = 0.01,
    timer_s: float = 3.0,
    max_sim_s: float = 7200.0,
    workdir: Path | None = None,
) -> TransferResult:
    """Send a random file of ``size`` bytes from a "sat" entity to a "ground" one.

    ``los``: (start, length) windows in simulated seconds; ``los_at_first_eof``: an LOS
    of that length starting when the sender has sent its first EOF (the worst moment:
    the ACK timers run). ``goodput`` divides the file's bits by the time in contact and
    the downlink rate (space packet bytes; the frame layer's overhead is not counted).
    ``timer_s``: the ACK and NAK timer intervals of both ends (contact seconds).
    """
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="cfdp-sim-")) if workdir is None else workdir
    (root / "sat").mkdir(parents=True, exist_ok=True)
    (root / "gnd").mkdir(parents=True, exist_ok=True)
    data = rng.randbytes(size)
    (root / "sat" / "file.bin").write_bytes(data)
    sat = CfdpEntity(
        CfdpConfig(local_id=42, remote_id=1, ack_interval_s=timer_s, nak_interval_s=timer_s),
        root / "sat",
    )
    gnd = CfdpEntity(
        CfdpConfig(
            local_id=1,
            remote_id=42,
            packet_type=PacketType.TC,
            max_pdu_len=UPLINK_MAX_PDU,
            ack_interval_s=timer_s,
            nak_interval_s=timer_s,
        ),
        root / "gnd",
    )
    down = SimLink(rng, loss, down_bps, delay_s)
    up = SimLink(rng, loss, up_bps, delay_s)
    tr = sat.put("file.bin", "in/file.bin", acknowledged=acknowledged)
    windows = [(a, a + n) for a, n in los]
    now = contact = 0.0
    eof_los_done = False
    while now < max_sim_s and not (tr.done and not sat.busy and not gnd.busy):
        now += dt_s
        if los_at_first_eof is not None and not eof_los_done and _eof_sent(tr):
            windows.append((now, now + los_at_first_eof))
            eof_los_done = True
        if any(a <= now < b for a, b in windows):
            down.cut()
            up.cut()
            continue
        contact += dt_s
        down.deliver(gnd, now)
        up.deliver(sat, now)
        gnd.poll(contact)
        sat.poll(contact)
        down.pump(sat, contact, dt_s)
        up.pump(gnd, contact, dt_s)
    got = root / "gnd" / "in" / "file.bin"
    incoming = [t for t in gnd.transfers if t.direction == "in" and t.verified_s is not None]
    delivered_s = incoming[0].verified_s if incoming else None
    same = got.is_file() and hashlib.sha256(got.read_bytes()).digest() == (
        hashlib.sha256(data).digest()
    )
    return TransferResult(
        identical=same,
        state=tr.state,
        condition=tr.condition,
        size=size,
        contact_s=round(contact, 3),
        sim_s=round(now, 3),
        goodput=round(size * 8 / (delivered_s * down_bps), 4) if delivered_s else 0.0,
        goodput_closed=round(size * 8 / (contact * down_bps), 4) if contact > 0 else 0.0,
        pdus_down=down.sent,
        pdus_lost_down=down.lost,
        pdus_up=up.sent,
        pdus_lost_up=up.lost,
        fd_retransmitted=tr.fd_retransmitted,
        naks=tr.naks,
    )


def _eof_sent(tr: object) -> bool:
    """True once the sender is past its file data (it has sent an EOF)."""
    return bool(getattr(tr, "eof_sent", False))


__all__ = ["SimLink", "TransferResult", "run_transfer"]
