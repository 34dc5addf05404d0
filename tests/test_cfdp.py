"""CFDP file transfer (fsw.ccsds.cfdp around cfdp-py): class 1 and 2, loss, LOS, refusals,
bad bytes, cancel, and transaction numbers that survive a reboot.

Transfers run over :mod:`hil.sim.cfdp_link` (simulated time: no wall-clock assertions).
Seeds of the lossy runs are drawn fresh each run and printed (rerun one with
``GNOMON_CFDP_SEED=<n>``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from fsw.ccsds.cfdp import (
    CFDP_APID,
    UPLINK_MAX_PDU,
    CfdpConfig,
    CfdpEntity,
    StoredSeqCount,
    safe_relative,
)
from fsw.ccsds.errors import CcsdsError
from fsw.ccsds.spacepacket import PacketType
from hil.sim.cfdp_link import run_transfer


def _seed() -> int:
    seed = int(os.environ.get("GNOMON_CFDP_SEED", random.SystemRandom().randrange(2**32)))
    print(f"CFDP seed {seed} (GNOMON_CFDP_SEED={seed} repeats it)")
    return seed


def _pair(tmp_path: Path) -> tuple[CfdpEntity, CfdpEntity]:
    (tmp_path / "sat").mkdir()
    (tmp_path / "gnd").mkdir()
    sat = CfdpEntity(CfdpConfig(local_id=42, remote_id=1), tmp_path / "sat")
    gnd = CfdpEntity(
        CfdpConfig(local_id=1, remote_id=42, packet_type=PacketType.TC, max_pdu_len=UPLINK_MAX_PDU),
        tmp_path / "gnd",
    )
    return sat, gnd


def _exchange(a: CfdpEntity, b: CfdpEntity, seconds: int, budget: int = 50_000) -> None:
    """A clean, instant link: every second each side sends up to ``budget`` bytes."""
    for t in range(seconds):
        for pkt in a.take(float(t), budget):
            b.receive(pkt)
        b.poll(float(t))
        for pkt in b.take(float(t), budget):
            a.receive(pkt)
        a.poll(float(t))


def test_class_1_on_a_clean_link_delivers_the_file_byte_identical_near_link_rate() -> None:
    r = run_transfer(size=300_000, acknowledged=False, seed=2)
    assert (r.identical, r.state, r.condition) == (True, "finished", "NO_ERROR")
    assert r.fd_retransmitted == 0 and r.naks == 0
    assert r.goodput >= 0.90  # simulated contact time, not wall time


@pytest.mark.req("CFDP-005")
def test_class_2_at_5_percent_loss_with_an_los_mid_transfer_completes_byte_identical() -> None:
    """The issue's lossy test: >= 5 % loss both ways, and a 15-minute LOS that starts when
    the sender's first EOF goes out (its ACK timer is running): the contact clock stops,
    the transfer carries on at the next AOS and ends with every byte right."""
    seed = _seed()
    r = run_transfer(size=150_000, acknowledged=True, loss=0.05, seed=seed, los_at_first_eof=900)
    assert (r.identical, r.state, r.condition) == (True, "finished", "NO_ERROR"), r
    assert r.sim_s >= 900.0 > r.contact_s  # the LOS happened, and was not contact time
    assert r.pdus_lost_down > 0 and r.fd_retransmitted > 0  # the losses were repaired


def test_class_2_survives_an_los_in_the_middle_of_its_file_data() -> None:
    seed = _seed()
    r = run_transfer(size=150_000, acknowledged=True, loss=0.05, seed=seed, los=[(0.5, 1800.0)])
    assert (r.identical, r.state) == (True, "finished"), r
    assert r.sim_s > 1800.0


def test_a_destination_outside_the_file_store_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    sat, _ = _pair(tmp_path)
    (tmp_path / "sat" / "f.bin").write_bytes(b"x" * 5000)
    with pytest.raises(CcsdsError, match="under the file store"):
        sat.put("f.bin", "../escape.bin")
    assert safe_relative("a/../../b") is None


def test_the_owner_can_refuse_an_incoming_file_and_the_refusal_is_counted(
    tmp_path: Path,
) -> None:
    (tmp_path / "sat").mkdir()
    (tmp_path / "gnd").mkdir()
    sat = CfdpEntity(
        CfdpConfig(local_id=42, remote_id=1),
        tmp_path / "sat",
        accept=lambda dest, size: None if dest.startswith("uplink/") else "not an upload folder",
    )
    gnd = CfdpEntity(
        CfdpConfig(local_id=1, remote_id=42, packet_type=PacketType.TC, max_pdu_len=UPLINK_MAX_PDU),
        tmp_path / "gnd",
    )
    (tmp_path / "gnd" / "m.gnm").write_bytes(b"m" * 3000)
    bad = gnd.put("m.gnm", "fsw/boot.bin", acknowledged=False)
    good = gnd.put("m.gnm", "uplink/m.gnm", acknowledged=True)
    _exchange(gnd, sat, 40)
    assert not (tmp_path / "sat" / "fsw" / "boot.bin").exists()
    assert sat.stats["refused"] == 1 and "not an upload folder" in sat.last_error
    assert bad.state != "finished"
    assert good.state == "finished"
    assert (tmp_path / "sat" / "uplink" / "m.gnm").read_bytes() == b"m" * 3000


def test_bad_bytes_on_the_cfdp_apid_are_counted_and_never_stop_a_transfer(
    tmp_path: Path,
) -> None:
    """Fuzz of the PDU parsing path: random packets, and real PDUs with bytes flipped,
    reach the receiver in the middle of a transfer; nothing raises, each undecodable one
    is counted, and the transfer still ends byte-identical."""
    seed = _seed()
    rng = random.Random(seed)
    sat, gnd = _pair(tmp_path)
    data = rng.randbytes(40_000)
    (tmp_path / "sat" / "f.bin").write_bytes(data)
    tr = sat.put("f.bin", "f.bin", acknowledged=True)
    seen: list[bytes] = []
    junk = 0
    for t in range(200):
        for pkt in sat.take(float(t), 8_000):
            seen.append(pkt)
            gnd.receive(pkt)
        for _ in range(20):
            junk += 1
            if seen and rng.random() < 0.7:
                raw = bytearray(rng.choice(seen))
                for _ in range(rng.randint(1, 4)):
                    raw[rng.randrange(6, len(raw))] ^= 1 << rng.randrange(8)
                if rng.random() < 0.3:
                    raw = raw[: rng.randrange(0, len(raw))]
                gnd.receive(bytes(raw))
            else:
                gnd.receive(rng.randbytes(rng.randrange(0, 64)))
        gnd.poll(float(t))
        for pkt in gnd.take(float(t), 8_000):
            sat.receive(pkt)
        sat.poll(float(t))
        if tr.done and not sat.busy and not gnd.busy:
            break
    assert gnd.stats["errors"] + gnd.stats["routine_ignored"] + gnd.stats["stale_pdus"] > 0
    # A flipped byte can land in file data: class 2 has no per-PDU CRC here (the frame's
    # FECF/MAC protect it on the real link), so the file checksum catches it and the
    # transfer ends failed, never finished with wrong bytes.
    if tr.state == "finished":
        assert (tmp_path / "gnd" / "f.bin").read_bytes() == data
    else:
        assert tr.state in ("failed", "cancelled", "abandoned")


def test_the_receiver_cancelling_stops_a_sender_still_sending(tmp_path: Path) -> None:
    sat, gnd = _pair(tmp_path)
    (tmp_path / "sat" / "big.bin").write_bytes(bytes(500_000))
    tr = sat.put("big.bin", "big.bin", acknowledged=True)
    for pkt in sat.take(0.0, 20_000):
        gnd.receive(pkt)
    (incoming,) = gnd.active
    assert gnd.cancel(incoming)
    _exchange(sat, gnd, 30, budget=20_000)
    assert tr.state in ("cancelled", "failed") and tr.done
    assert tr.fd_pdus < 400  # it stopped: the whole file is about 500 PDUs


def test_transaction_numbers_survive_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "cfdp.seq"
    first = StoredSeqCount(path)
    numbers = [first.get_and_increment() for _ in range(3)]
    after_reboot = StoredSeqCount(path)
    assert after_reboot.get_and_increment() == numbers[-1] + 1


def test_pdus_travel_on_the_cfdp_apid_in_space_packets_of_the_entitys_type(
    tmp_path: Path,
) -> None:
    _, gnd = _pair(tmp_path)
    (tmp_path / "gnd" / "up.bin").write_bytes(b"u" * 2000)
    gnd.put("up.bin", "up.bin")
    (pkt, *_) = gnd.take(0.0, 5000)
    assert ((pkt[0] & 7) << 8) | pkt[1] == CFDP_APID
    assert (pkt[0] >> 4) & 1 == int(PacketType.TC)
    assert all(len(p) <= UPLINK_MAX_PDU + 6 for p in gnd.take(0.0, 50_000))
