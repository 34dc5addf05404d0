"""SDLS security associations and the link configuration / key file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    CcsdsError,
    ConfigError,
    LinkConfig,
    MacAlgorithm,
    MacError,
    ReplayError,
    SdlsError,
    SecurityAssociation,
    UnknownSpiError,
)
from fsw.ccsds.config import TEST_KEY_FILE
from fsw.ccsds.sdls import peek_spi

KEY32 = bytes(range(32))
ALGOS = [
    (MacAlgorithm.HMAC_SHA256, 16),
    (MacAlgorithm.HMAC_SHA256, 8),
    (MacAlgorithm.AES_CMAC, 16),
    (MacAlgorithm.AES_GCM, 16),
]


def pair(
    algorithm: MacAlgorithm, mac_len: int, window: int = 64
) -> tuple[SecurityAssociation, SecurityAssociation]:
    return (
        SecurityAssociation(spi=5, key=KEY32, algorithm=algorithm, mac_len=mac_len, window=window),
        SecurityAssociation(spi=5, key=KEY32, algorithm=algorithm, mac_len=mac_len, window=window),
    )


@pytest.mark.parametrize(("algorithm", "mac_len"), ALGOS)
def test_protect_verify_round_trip_and_layout(algorithm: MacAlgorithm, mac_len: int) -> None:
    ground, board = pair(algorithm, mac_len)
    protected = ground.protect(b"set mode safe", aad=b"\x00\x2a\x00\x20\x07")
    assert len(protected) == ground.overhead + 13
    assert protected[:2] == b"\x00\x05" and peek_spi(protected) == 5
    seq_len = 12 if algorithm is MacAlgorithm.AES_GCM else 4
    assert int.from_bytes(protected[2 : 2 + seq_len], "big") == 1
    if algorithm is MacAlgorithm.AES_GCM:
        assert b"set mode safe" not in protected  # encrypted
    else:
        assert protected[2 + seq_len : 2 + seq_len + 13] == b"set mode safe"
    assert board.verify(protected, aad=b"\x00\x2a\x00\x20\x07") == b"set mode safe"
    assert board.highest_accepted == 1


def test_hmac_known_answer() -> None:
    import hashlib
    import hmac

    sa = SecurityAssociation(spi=1, key=KEY32)
    out = sa.protect(b"data", aad=b"hdr")
    header = b"\x00\x01\x00\x00\x00\x01"
    assert (
        out
        == header
        + b"data"
        + hmac.new(KEY32, b"hdr" + header + b"data", hashlib.sha256).digest()[:16]
    )


@pytest.mark.parametrize(("algorithm", "mac_len"), ALGOS)
def test_bad_mac_wrong_key_and_wrong_header_are_rejected(
    algorithm: MacAlgorithm, mac_len: int
) -> None:
    ground, board = pair(algorithm, mac_len)
    protected = bytearray(ground.protect(b"payload", aad=b"H"))
    tampered = bytes(protected[:-1]) + bytes([protected[-1] ^ 1])
    with pytest.raises(MacError):
        board.verify(tampered, aad=b"H")
    with pytest.raises(MacError):
        board.verify(bytes(protected), aad=b"X")  # header (AAD) changed in flight
    other = SecurityAssociation(spi=5, key=bytes(32), algorithm=algorithm, mac_len=mac_len)
    with pytest.raises(MacError):
        other.verify(bytes(protected), aad=b"H")
    assert board.stats["bad_mac"] == 2
    assert board.verify(bytes(protected), aad=b"H") == b"payload"  # the good one still works


def test_replay_window() -> None:
    ground, board = pair(MacAlgorithm.HMAC_SHA256, 16, window=4)
    frames = [ground.protect(bytes([i])) for i in range(8)]
    assert board.verify(frames[0]) == b"\x00"
    with pytest.raises(ReplayError, match="already accepted"):
        board.verify(frames[0])
    assert board.verify(frames[5]) == b"\x05"  # jump ahead (frames lost)
    assert board.verify(frames[3]) == b"\x03"  # late but inside the window, unseen
    with pytest.raises(ReplayError, match="older than the window"):
        board.verify(frames[1])  # 6 - 2 >= 4
    with pytest.raises(ReplayError):
        board.verify(frames[3])
    assert board.stats["replays"] == 3


def test_check_does_not_use_up_the_sequence_number() -> None:
    ground, board = pair(MacAlgorithm.AES_CMAC, 16)
    protected = ground.protect(b"x")
    data, seq = board.check(protected)
    data2, seq2 = board.check(protected)  # the FARM discarded it: it may come again
    assert (data, seq) == (data2, seq2) == (b"x", 1)
    board.commit(seq)
    with pytest.raises(ReplayError):
        board.check(protected)


def test_unknown_spi_and_short_input() -> None:
    ground = SecurityAssociation(spi=9, key=KEY32)
    board = SecurityAssociation(spi=5, key=KEY32)
    with pytest.raises(UnknownSpiError, match="SPI 9"):
        board.verify(ground.protect(b"x"))
    with pytest.raises(MacError, match="cannot hold"):
        board.verify(b"\x00\x05\x00")
    with pytest.raises(UnknownSpiError):
        peek_spi(b"\x00")


def test_rekey_carries_the_sequence_on_and_old_key_fails() -> None:
    ground, board = pair(MacAlgorithm.HMAC_SHA256, 16)
    recorded = [ground.protect(b"x") for _ in range(3)]
    for frame in recorded:
        board.verify(frame)
    old = ground.protect(b"old")
    new_key = bytes(reversed(KEY32))
    ground.rekey(new_key)
    board.rekey(new_key)
    fresh = ground.protect(b"new")
    assert int.from_bytes(fresh[2:6], "big") == 5  # numbering carries on across keys
    assert board.verify(fresh) == b"new"
    with pytest.raises(MacError):
        board.verify(old)
    # Rotating back to the first key does not reopen its recorded frames.
    ground.rekey(KEY32)
    board.rekey(KEY32)
    for frame in recorded:
        with pytest.raises(ReplayError):
            board.verify(frame)
    assert board.verify(ground.protect(b"again")) == b"again"


def test_restore_sets_a_floor_and_state_after_previews_commit() -> None:
    ground, board = pair(MacAlgorithm.AES_CMAC, 16)
    recorded = [ground.protect(b"x") for _ in range(5)]
    board.restore(5)  # the floor after a reset: everything at or below 5 counts as used
    for frame in recorded:
        with pytest.raises(ReplayError):
            board.verify(frame)
    nxt = ground.protect(b"y")
    _, seq = board.check(nxt)
    assert board.state_after(seq) == (6, (1 << board.window) - 1)  # 1..6 all used
    board.commit(seq)
    assert (board.highest_accepted, board.replay_bitmap) == board.state_after(seq)
    with pytest.raises(SdlsError):
        board.restore(1 << 32)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"spi": 0}, "SPI 0"),
        ({"key": bytes(8)}, "too short"),
        ({"algorithm": "des"}, "unknown MAC algorithm"),
        ({"algorithm": "aes-cmac", "key": bytes(20)}, "must be 16, 24 or 32"),
        ({"algorithm": "aes-gcm", "mac_len": 12}, "16-byte tag"),
        ({"mac_len": 40}, "outside 8..32"),
        ({"window": 0}, "window"),
    ],
)
def test_security_association_refuses_bad_settings(kwargs: dict[str, object], reason: str) -> None:
    base: dict[str, object] = {"spi": 1, "key": KEY32}
    base.update(kwargs)
    with pytest.raises(SdlsError, match=reason):
        SecurityAssociation(**base)  # type: ignore[arg-type]


def test_sequence_exhaustion_demands_a_new_key() -> None:
    sa = SecurityAssociation(spi=1, key=KEY32, arsn=2**32 - 2)
    sa.protect(b"last")
    with pytest.raises(SdlsError, match="rotate the key"):
        sa.protect(b"one too many")


@settings(max_examples=300)
@given(st.binary(max_size=80), st.sampled_from(ALGOS), st.data())
def test_verify_fuzz(raw: bytes, algo: tuple[MacAlgorithm, int], data: st.DataObject) -> None:
    ground, board = pair(*algo)
    original = ground.protect(data.draw(st.binary(max_size=40)))
    good = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        good[data.draw(st.integers(0, len(good) - 1))] ^= data.draw(st.integers(1, 255))
    forged = [raw, b"\x00\x05" + raw] + ([bytes(good)] if bytes(good) != original else [])
    for candidate in forged:
        with contextlib.suppress(CcsdsError):
            board.verify(candidate)
    assert board.highest_accepted == 0  # nothing forged got through


# --- configuration / key file ---------------------------------------------------------------


def test_test_key_file_loads() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    assert cfg.spacecraft_id == 42 and cfg.tm_vcids == (0, 1) and cfg.sdls_enabled
    assert [sa.algorithm for sa in cfg.security_associations] == [
        "hmac-sha256",
        "aes-cmac",
        "aes-gcm",
    ]
    assert len(cfg.key(1)) == 32
    assert cfg.make_sa(3).algorithm is MacAlgorithm.AES_GCM


def test_json_key_file_equals_toml(tmp_path: Path) -> None:
    import tomllib

    doc = tomllib.loads(TEST_KEY_FILE.read_text())
    path = tmp_path / "link.json"
    path.write_text(json.dumps(doc))
    assert LinkConfig.load(path) == LinkConfig.load(TEST_KEY_FILE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[link]\nspacecraft_id = 5000\n", "link.spacecraft_id: expected an integer .* got 5000"),
        ("[link]\nspacecraft_id = 1\nfrobnicate = 2\n", "link.frobnicate: unknown key"),
        ("[link]\nspacecraft_id = 1\nfop_window = 20\n", "below half the farm_window"),
        ("[link]\nspacecraft_id = 1\n[sdls]\nactive_spi = 4\n", "active_spi 4"),
        ("[link]\nspacecraft_id = 1\n[[sdls.sa]]\nspi = 1\nkey_id = 3\n", "key id 3"),
        (
            "[link]\nspacecraft_id = 1\n[[sdls.keys]]\nid = 1\nhex = 'zz'\n",
            r"sdls.keys\[0\].hex: expected hex digits",
        ),
        (
            "[link]\nspacecraft_id = 1\n[[sdls.keys]]\nid = 1\nhex = '00'\n"
            "[[sdls.sa]]\nspi = 1\nkey_id = 1\n",
            "SA 1: HMAC-SHA-256 key of 1 bytes",
        ),
        ("[link\n", "not valid TOML"),
        ("[link]\n", "link.spacecraft_id: missing"),
        ("[link]\nspacecraft_id = 1\n[[sdls.sa]]\nspi = 1\nkey_id = 1\nalgorithm = 'x'\n", "algo"),
    ],
)
def test_bad_key_files(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "link.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        LinkConfig.load(path)


def test_missing_key_file() -> None:
    with pytest.raises(ConfigError, match=r"keys\.toml: cannot read"):
        LinkConfig.load("/nonexistent/keys.toml")
