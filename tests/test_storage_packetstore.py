"""Packet store files (fsw/storage/packetstore.py): append-only CRC'd records that a reset,
a kill -9 or bit rot never costs more than the record being written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fsw.storage.errors import StorageError
from fsw.storage.packetstore import (
    REC_HEADER_LEN,
    SEG_HEADER_LEN,
    PacketStore,
    check_store,
    encode_record,
)


def _pkt(i: int, n: int = 40) -> bytes:
    """A packet-like record whose content names its index."""
    return i.to_bytes(4, "big") + bytes((i + k) & 0xFF for k in range(n - 4))


@pytest.mark.req("STO-001")
def test_records_survive_a_reopen_in_order(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=1 << 20, segment_bytes=4096)
    for i in range(500):
        assert st.append(_pkt(i), 1000.0 + i)
    st.close()
    again = PacketStore(tmp_path / "s", capacity_bytes=1 << 20, segment_bytes=4096)
    got = list(again.records())
    assert [t for t, _ in got] == [1000.0 + i for i in range(500)]
    assert [p for _, p in got] == [_pkt(i) for i in range(500)]
    assert len(again.segments) > 1  # the records span several segment files
    assert again.opened.torn_records == 0
    assert check_store(tmp_path / "s").ok


@pytest.mark.req("STO-001")
def test_a_torn_last_record_is_cut_and_counted_and_the_rest_kept(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=1 << 20)
    for i in range(10):
        st.append(_pkt(i), float(i))
    st.close()
    seg = sorted((tmp_path / "s").iterdir())[-1]
    with open(seg, "ab") as fh:  # a write cut by a power loss: half a record
        fh.write(encode_record(_pkt(10), 10.0)[:25])
    rep = check_store(tmp_path / "s")
    assert not rep.ok and "torn tail" in rep.problems[0]
    again = PacketStore(tmp_path / "s", capacity_bytes=1 << 20)
    assert again.opened.torn_records == 1
    assert [p for _, p in again.records()] == [_pkt(i) for i in range(10)]
    assert again.append(_pkt(11), 11.0)  # and it carries on writing after the cut
    again.close()
    assert check_store(tmp_path / "s").ok
    assert len(list(PacketStore(tmp_path / "s", capacity_bytes=1 << 20).records())) == 11


@pytest.mark.req("STO-001")
def test_a_damaged_record_costs_only_itself(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=1 << 20)
    for i in range(20):
        st.append(_pkt(i), float(i))
    st.close()
    seg = sorted((tmp_path / "s").iterdir())[-1]
    raw = bytearray(seg.read_bytes())
    rec_len = REC_HEADER_LEN + 40
    raw[SEG_HEADER_LEN + 5 * rec_len + REC_HEADER_LEN + 3] ^= 0x40  # bit rot in record 5
    seg.write_bytes(bytes(raw))
    rep = check_store(tmp_path / "s")
    assert not rep.ok and rep.corrupt_bytes == rec_len
    again = PacketStore(tmp_path / "s", capacity_bytes=1 << 20)
    assert [p for _, p in again.records()] == [_pkt(i) for i in range(20) if i != 5]
    assert again.opened.corrupt_bytes == rec_len


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from fsw.storage.packetstore import PacketStore
    st = PacketStore(Path(sys.argv[1]), capacity_bytes=1 << 26, segment_bytes=1 << 16)
    i = 0
    while True:
        data = i.to_bytes(4, "big") + bytes((i + k) & 0xFF for k in range(36 + i % 200))
        st.append(data, float(i))
        i += 1
        if i % 500 == 0:
            sys.stdout.write(f"{i}\\n")
            sys.stdout.flush()
    """
)


@pytest.mark.req("STO-001")
def test_kill_9_in_the_middle_of_store_writes_loses_nothing_written(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(2**32)
    print(f"test_storage_packetstore: kill seed {seed}")
    rng = random.Random(seed)
    root = tmp_path / "s"
    target = rng.randrange(2_000, 20_000)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    written = 0
    for line in proc.stdout:
        written = int(line)
        if written >= target:
            break
    proc.send_signal(signal.SIGKILL)  # mid-write: the writer never stops on its own
    proc.wait()
    assert written >= target
    before = check_store(root)
    assert not [p for p in before.problems if "torn tail" not in p]  # at most a torn tail
    st = PacketStore(root, capacity_bytes=1 << 26, segment_bytes=1 << 16)
    got = list(st.records())
    assert len(got) >= written  # everything reported written is there ...
    for t, data in got:  # ... intact, in order, each record what was written
        i = int(t)
        assert data == i.to_bytes(4, "big") + bytes((i + k) & 0xFF for k in range(36 + i % 200))
    assert [int(t) for t, _ in got] == list(range(len(got)))
    st.close()
    assert check_store(root).ok


@pytest.mark.req("STO-002")
def test_a_circular_store_overwrites_its_oldest_segment_and_counts_it(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=8192, segment_bytes=2048, circular=True)
    for i in range(400):
        assert st.append(_pkt(i), float(i))
    assert st.used_bytes <= 8192
    held = [int(t) for t, _ in st.records()]
    assert held[-1] == 399 and held == list(range(held[0], 400))
    assert st.counts["overwritten"] == 400 - len(held) > 0
    assert st.counts["refused"] == 0


@pytest.mark.req("STO-002")
def test_a_stop_when_full_store_refuses_new_packets_and_says_it_is_full(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=8192, segment_bytes=2048, circular=False)
    results = [st.append(_pkt(i), float(i)) for i in range(400)]
    kept = results.count(True)
    assert results == [True] * kept + [False] * (400 - kept)
    assert st.full and st.counts["refused"] == 400 - kept
    assert [int(t) for t, _ in st.records()] == list(range(kept))  # the oldest stay
    st.delete_up_to(float(kept // 2))
    assert not st.full and st.append(_pkt(999), 999.0)


@pytest.mark.req("STO-005")
def test_delete_up_to_a_time_survives_a_reopen(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=1 << 20, segment_bytes=1024)
    for i in range(100):
        st.append(_pkt(i), float(i))
    gone = st.delete_up_to(49.0)
    assert gone == 50
    assert [int(t) for t, _ in st.records()] == list(range(50, 100))
    st.close()
    again = PacketStore(tmp_path / "s", capacity_bytes=1 << 20, segment_bytes=1024)
    assert [int(t) for t, _ in again.records()] == list(range(50, 100))
    assert again.oldest_t == 50.0 and again.newest_t == 99.0
    assert again.record_count == 50


def test_reading_by_time_range_and_cursor(tmp_path: Path) -> None:
    st = PacketStore(tmp_path / "s", capacity_bytes=1 << 20, segment_bytes=1024)
    for i in range(100):
        st.append(_pkt(i), float(i))
    cur = st.cursor_at(30.0)
    got: list[int] = []
    done = False
    while not done:
        recs, cur, done = st.read_from(cur, 200, t_to=59.0)
        got += [int(t) for t, _ in recs]
    assert got == list(range(30, 60))


def test_a_bad_configuration_is_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="segment_bytes"):
        PacketStore(tmp_path / "s", capacity_bytes=1000, segment_bytes=4096)
