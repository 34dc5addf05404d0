"""SDLS as a standard ground speaks it (CCSDS 355.0-B as Yamcs 5.12 implements it):
an AES-256-GCM SA with the standard authentication mask whose first IV is 0.

The reference frames here are built with nothing of Gnomon's SDLS code: the AAD, the
nonce and the tag come straight from ``cryptography``'s AES-GCM as Yamcs'
``SecurityAssociationAes256Gcm128`` computes them (docs/ccsds.md, "SDLS and standard
grounds"), so the spacecraft end is checked against an independent construction.
"""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fsw.ccsds import ConfigError, LinkConfig, MacAlgorithm, MacError, PusTc, SdlsError
from fsw.ccsds.cltu import encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE
from fsw.ccsds.crc import fecf16
from fsw.ccsds.linkstate import MemoryStateStore
from fsw.ccsds.sdls import SecurityAssociation, auth_mask
from fsw.ccsds.stack import GroundLink, SpacecraftLink

#: Yamcs' StandardAuthMask for a TC frame with a segment header (20 bytes).
YAMCS_TC_MASK = bytes.fromhex("0000fc0000ffffff") + bytes(12)


def yamcs_frame(
    cfg: LinkConfig, packet: bytes, iv: int, *, seq: int = 0, mask: bytes = YAMCS_TC_MASK
) -> bytes:
    """A TC AD frame protected the way Yamcs' AES-256-GCM SA (SPI 3) protects it."""
    key = cfg.key(cfg.sa_config(3).key_id)
    body_len = 5 + 1 + 2 + 12 + len(packet) + 16 + 2
    scid = cfg.spacecraft_id
    header = bytes(
        [
            (scid >> 8) & 3,
            scid & 0xFF,
            (cfg.tc_vcid << 2) | ((body_len - 1) >> 8),
            (body_len - 1) & 0xFF,
            seq,
        ]
    )
    sec = header + bytes([0xC0 | cfg.map_id]) + (3).to_bytes(2, "big") + iv.to_bytes(12, "big")
    aad = bytes(a & m for a, m in zip(sec, mask, strict=False))[: len(mask)]
    frame = sec + AESGCM(key).encrypt(iv.to_bytes(12, "big"), packet, aad)
    return frame + fecf16(frame).to_bytes(2, "big")


def ping(n: int = 1) -> bytes:
    return PusTc(apid=100, service=17, subservice=1, seq_count=n).encode()


@pytest.fixture
def cfg() -> LinkConfig:
    return LinkConfig.load(TEST_KEY_FILE)


@pytest.mark.req("COMMS-003")
def test_a_frame_built_as_yamcs_builds_it_is_accepted_with_iv_0_first(cfg: LinkConfig) -> None:
    sc = SpacecraftLink(cfg)
    first = encode_cltu(yamcs_frame(cfg, ping(1), iv=0, seq=0), randomize=True)
    assert sc.receive(first) == [ping(1)]
    assert sc.receive(first) == []  # the same frame again: a COP-1 resend, not executed twice
    assert sc.counters["frames_duplicate"] == 1
    second = encode_cltu(yamcs_frame(cfg, ping(2), iv=1, seq=1), randomize=True)
    assert sc.receive(second) == [ping(2)]
    assert sc.counters["frames_accepted"] == 2
    assert sc.counters["sdls_bad_mac"] == 0


@pytest.mark.req("COMMS-003")
def test_the_standard_mask_authenticates_vcid_segment_header_and_spi_only(
    cfg: LinkConfig,
) -> None:
    """Fields the standard mask leaves out (here N(S)) may change in transit; a frame made
    under the full mask (Yamcs' authMask FF x 20) needs an SA configured "full"."""
    sc = SpacecraftLink(cfg)
    assert sc.receive(encode_cltu(yamcs_frame(cfg, ping(1), iv=0, seq=0))) == [ping(1)]
    full = yamcs_frame(cfg, ping(2), iv=1, seq=1, mask=b"\xff" * 20)
    assert sc.receive(encode_cltu(full)) == []
    assert sc.counters["sdls_bad_mac"] == 1
    strict = dataclasses.replace(
        cfg,
        security_associations=tuple(
            dataclasses.replace(sa, auth_mask="full") if sa.spi == 3 else sa
            for sa in cfg.security_associations
        ),
    )
    full0 = yamcs_frame(cfg, ping(2), iv=0, seq=0, mask=b"\xff" * 20)
    assert SpacecraftLink(strict).receive(encode_cltu(full0)) == [ping(2)]


@pytest.mark.req("COMMS-003")
def test_gnomon_ground_and_flight_agree_on_the_gcm_sa(cfg: LinkConfig) -> None:
    gcm = dataclasses.replace(cfg, active_spi=3)
    sc, gnd = SpacecraftLink(gcm), GroundLink(gcm)
    assert sc.receive(gnd.send_tc(ping(1), now_s=0.0)) == [ping(1)]
    assert sc.counters["sdls_bad_mac"] == 0


@pytest.mark.req("COMMS-003")
def test_an_sa_that_never_accepted_anything_still_takes_iv_0_after_a_reboot(
    cfg: LinkConfig,
) -> None:
    """The saved state of an SA that has accepted nothing keeps it fresh; once 0 was
    accepted, a reboot refuses it like any used number."""
    store = MemoryStateStore()
    sc = SpacecraftLink(cfg, store)
    gnd = GroundLink(cfg)  # SPI 1 (HMAC): makes the link save its state
    assert sc.receive(gnd.send_tc(ping(1), now_s=0.0)) == [ping(1)]
    rebooted = SpacecraftLink(cfg, store)
    frame0 = encode_cltu(yamcs_frame(cfg, ping(2), iv=0, seq=1))
    assert rebooted.receive(frame0) == [ping(2)]
    again = SpacecraftLink(cfg, store)
    assert again.receive(frame0) == []
    assert again.counters["sdls_replays"] + again.counters["frames_duplicate"] == 1


def test_hmac_and_cmac_keep_the_sequence_number_authenticated_under_the_standard_mask() -> None:
    key = bytes(range(32))
    header = bytes.fromhex("002a0017 00c0".replace(" ", ""))
    for algorithm in (MacAlgorithm.HMAC_SHA256, MacAlgorithm.AES_CMAC):
        ground = SecurityAssociation(2, key, algorithm, auth_mask="standard")
        board = SecurityAssociation(2, key, algorithm, auth_mask="standard")
        protected = bytearray(ground.protect(b"cmd", header))
        protected[5] ^= 0x40  # another sequence number, same MAC: a replay in disguise
        with pytest.raises(MacError):
            board.verify(bytes(protected), header)
        # while the frame number (byte 4 of the header) is outside the standard mask
        assert board.verify(ground.protect(b"cmd", header), header[:4] + b"\x99" + header[5:])


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        ("ffff", "does not fit"),
        ("00" * 6 + "ffff" + "00" * 4, "ARSN"),  # SA 1 is HMAC: 6 + 2 + 4 bytes
    ],
)
def test_bad_masks_are_refused_with_the_reason(mask: str, reason: str) -> None:
    text = TEST_KEY_FILE.read_text(encoding="utf-8").replace(
        'auth_mask = "full"', f'auth_mask = "{mask}"', 1
    )
    with pytest.raises(ConfigError, match=reason):
        LinkConfig.from_dict(tomllib.loads(text))


def test_mask_helper_refuses_what_it_cannot_place() -> None:
    with pytest.raises(SdlsError, match="standard authentication mask needs"):
        auth_mask("standard", MacAlgorithm.AES_GCM, 4)
    with pytest.raises(SdlsError, match="unknown authentication mask"):
        SecurityAssociation(1, bytes(32), auth_mask="loose")
