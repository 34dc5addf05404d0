"""The .gnm format: round trip, known answer, every corruption case, fuzzing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsw.ai import ModelIntegrityError, crc32c, gnm, shipped_dir

ARTIFACTS = shipped_dir()
SMALL = (ARTIFACTS / "cloudnet-s.gnm").read_bytes()
KEY = b"operator-key-0123456789"


def tiny(n_weights: int = 9000) -> tuple[gnm.ModelGraph, bytes]:
    """An eight-block linear model with fixed contents."""
    b = gnm.ArenaBuilder()
    b.add("fc.w", (np.arange(n_weights) % 255 - 127).astype(np.int8).reshape(-1, 8))
    cout = n_weights // 8
    b.add("fc.b", np.arange(cout, dtype=np.int32) - 5)
    b.add("fc.s", np.full(cout, 0.5, dtype=np.float32))
    b.add("fc.d", np.full(cout, 0.25, dtype=np.float32))
    b.add("fc.clip", np.stack([np.full(cout, -9.0), np.full(cout, 9.0)]).astype(np.float32))
    op = gnm.OpSpec(
        "linear",
        "fc",
        "x",
        "y",
        {"weight": "fc.w", "bias": "fc.b", "scale": "fc.s", "dequant": "fc.d", "clip": "fc.clip"},
    )
    graph = gnm.ModelGraph("tiny", (-1, 8), ("a",), (op,), b.tensors, {"note": "test"})
    return graph, b.arena()


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    d = bytearray(data)
    d[offset] ^= 1 << bit
    return bytes(d)


def regions(data: bytes, key: bytes | None = None) -> list[tuple[str, int | None]]:
    return [(p.region, p.block) for p in gnm.verify(data, hmac_key=key)]


# --- round trip and known answer ---------------------------------------------------------


def test_round_trip_preserves_graph_arena_and_tensors() -> None:
    graph, arena = tiny()
    blob = gnm.encode(graph, arena)
    m = gnm.decode(blob)
    assert m.graph == graph
    assert bytes(m.arena) == arena
    assert m.header.n_blocks == 8 and m.header.arena_offset % 4096 == 0
    assert np.array_equal(m.tensor_array("fc.b"), np.arange(1125, dtype=np.int32) - 5)
    assert gnm.encode(m.graph, bytes(m.arena)) == blob  # re-encoding is byte-identical


def test_known_answer_header_and_digest() -> None:
    graph, arena = tiny()
    blob = gnm.encode(graph, arena)
    assert blob[:8] == b"\x89GNM\r\n\x1a\n"
    fields = struct.unpack_from("<HHIIIIIIIQQ", blob, 8)
    assert fields[:5] == (1, 0, 0, 4096, 8)  # version 1.0, unsigned, 4 KiB blocks, 8 blocks
    assert fields[9] == 4096 and fields[10] == len(arena)
    assert struct.unpack_from("<I", blob, 60)[0] == crc32c(blob[:60])
    assert hashlib.sha256(blob).hexdigest() == KNOWN_TINY_SHA256


KNOWN_TINY_SHA256 = "ca647463a625684ed9af15e22f55b5ee0bcbe641627e4e642e1c039315c12b2f"


def test_header_encode_decode_round_trip() -> None:
    h = gnm.decode(SMALL).header
    assert gnm.Header.decode(h.encode()) == h
    assert h.encode() == SMALL[:64]


def test_signed_file_verifies_only_with_the_key() -> None:
    graph, arena = tiny()
    blob = gnm.encode(graph, arena, hmac_key=KEY)
    assert gnm.decode(blob, hmac_key=KEY).header.signed
    assert regions(blob, b"another-key-0123456") == [("hmac", None)]
    assert regions(gnm.encode(graph, arena), KEY) == [("hmac", None)]  # unsigned refused
    assert regions(flip(blob, len(blob) - 1), KEY) == [("hmac", None)]
    assert gnm.verify(blob) == []  # without a key the signature is not required


# --- every corruption case -----------------------------------------------------------------


def test_every_header_bit_flip_is_caught_as_header() -> None:
    for bit in range(64 * 8):
        assert regions(flip(SMALL, bit // 8, bit % 8))[0][0] == "header"


def test_graph_flip_is_caught_as_graph() -> None:
    h = gnm.decode(SMALL).header
    for off in range(h.graph_offset, h.graph_offset + h.graph_size, 97):
        assert regions(flip(SMALL, off, 3))[0] == ("graph", None)


def test_table_copies_are_caught_separately_and_together() -> None:
    h = gnm.decode(SMALL).header
    a = flip(SMALL, h.table_a_offset + 2)
    b = flip(SMALL, h.table_b_offset + 5, 7)
    assert regions(a)[0] == ("table-a", None)
    assert regions(b)[0] == ("table-b", None)
    both = flip(a, h.table_b_offset + 5, 7)
    found = regions(both)
    assert ("table-a", None) in found and ("table-b", None) in found
    assert ("arena", None) in found  # the arena cannot be checked without a table
    with pytest.raises(ModelIntegrityError) as e:
        gnm.decode(both)
    assert e.value.region == "table-a"


@pytest.mark.parametrize("stride", [pytest.param(1, marks=pytest.mark.slow), 13])
def test_every_arena_byte_flip_names_its_block(stride: int) -> None:
    h = gnm.decode(SMALL).header
    for i in range(0, h.arena_size, stride):
        found = regions(flip(SMALL, h.arena_offset + i, i % 8))
        assert found[0] == ("arena", i // h.block_size), i
        assert found[-1] == ("sha256", None)


def test_padding_and_digest_damage_are_named() -> None:
    h = gnm.decode(SMALL).header
    pad = h.table_a_offset + h.table_size + 10
    assert regions(flip(SMALL, pad))[0] == ("padding", None)
    assert regions(flip(SMALL, h.sha_offset + 31)) == [("sha256", None)]


def test_truncated_and_extended_files() -> None:
    for n in (0, 10, 63, 64, 100, 4096, len(SMALL) // 2, len(SMALL) - 1):
        with pytest.raises(ModelIntegrityError) as e:
            gnm.decode(SMALL[:n])
        assert e.value.region in ("file", "header")
        assert "truncated" in str(e.value) or "too short" in str(e.value) or n < 64
    assert regions(SMALL + b"\0")[0] == ("file", None)


def test_decode_error_names_block_and_counts_the_rest() -> None:
    h = gnm.decode(SMALL).header
    bad = flip(flip(SMALL, h.arena_offset + 5000), h.arena_offset + 9000)
    with pytest.raises(ModelIntegrityError) as e:
        gnm.decode(bad)
    assert e.value.region == "arena" and e.value.block == 1
    assert "block 1" in str(e.value) and "more" in str(e.value)


def test_writer_refuses_inconsistent_graphs() -> None:
    graph, arena = tiny()
    bad = gnm.ModelGraph(
        graph.name, graph.input_shape, graph.output_labels, graph.ops, graph.tensors[1:], graph.meta
    )  # weight tensor missing
    with pytest.raises(ModelIntegrityError):
        gnm.encode(bad, arena)
    with pytest.raises(ModelIntegrityError):
        gnm.encode(graph, b"")


# --- fuzzing ---------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=6000))
def test_random_bytes_raise_only_integrity_errors(data: bytes) -> None:
    with pytest.raises(ModelIntegrityError):
        gnm.decode(data)
    with pytest.raises(ModelIntegrityError):
        gnm.decode(SMALL[:8] + data)


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.integers(0, len(SMALL) - 1), st.integers(1, 255)),
        min_size=1,
        max_size=8,
        unique_by=lambda m: m[0],
    )
)
def test_mutated_files_are_rejected(mutations: list[tuple[int, int]]) -> None:
    d = bytearray(SMALL)
    for off, x in mutations:
        d[off] ^= x
    with pytest.raises(ModelIntegrityError):
        gnm.decode(bytes(d))


def reseal(graph_json: bytes, base: bytes = SMALL) -> bytes:
    """Replace the graph section and recompute every checksum (a forged but sealed file)."""
    h = gnm.decode(base).header
    m = gnm.decode(base)
    graph_json += b" " * ((-len(graph_json)) % 8)
    table = gnm.block_crcs(m.arena)
    tbytes = table.astype("<u4").tobytes()
    tbytes += struct.pack("<I", crc32c(tbytes))
    ta = 64 + len(graph_json)
    ao = -(-(ta + len(tbytes)) // 4096) * 4096
    nh = gnm.Header(
        1,
        0,
        0,
        h.block_size,
        h.n_blocks,
        64,
        len(graph_json),
        ta,
        ao + h.arena_size,
        ao,
        h.arena_size,
        crc32c(graph_json),
    )
    out = bytearray(nh.encode() + graph_json + tbytes)
    out += bytes(ao - len(out)) + bytes(m.arena) + tbytes
    return bytes(out + hashlib.sha256(out).digest())


def test_reseal_helper_round_trips() -> None:
    m = gnm.decode(SMALL)
    raw = SMALL[64 : 64 + m.header.graph_size]
    assert gnm.decode(reseal(raw.rstrip())).graph == m.graph


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sealed_graph_mutations_raise_only_integrity_errors(data: st.DataObject) -> None:
    m = gnm.decode(SMALL)
    raw = bytearray(SMALL[64 : 64 + m.header.graph_size].rstrip())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.sampled_from(b'0123456789-{}[]",:aeiouxyz \x00\xff'))
    with contextlib.suppress(ModelIntegrityError):
        gnm.decode(reseal(bytes(raw)))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=20,
    )
)
def test_sealed_arbitrary_json_raises_only_integrity_errors(doc: object) -> None:
    base = json.loads(SMALL[64 : 64 + gnm.decode(SMALL).header.graph_size])
    for key in ("tensors", "ops", "meta", "input_shape", "name"):
        forged = dict(base, **{key: doc})
        with contextlib.suppress(ModelIntegrityError):
            gnm.decode(reseal(json.dumps(forged).encode()))
