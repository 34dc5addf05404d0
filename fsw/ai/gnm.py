"""The ``.gnm`` model artifact: one self-checking file per quantized network.

Layout (all integers little-endian; full description in ``docs/model-format.md``)::

    header   64 B   magic, version, flags, geometry, section offsets, graph CRC, header CRC
    graph    JSON   op graph + tensor table + metadata (UTF-8, canonical, CRC in header)
    table A  4(n+1) CRC-32C of each arena block, then the CRC-32C of those n words
    padding  zeros  up to the next 4096-byte boundary
    arena           all int8 weights, int32 biases and float32 scales, 64-byte aligned
    table B  4(n+1) second copy of table A
    sha256   32 B   SHA-256 of every byte before it
    hmac     32 B   optional HMAC-SHA256 (key held by the operator) of every byte before it

>>> b = ArenaBuilder()
>>> w = b.add("fc.w", np.arange(6, dtype=np.int8).reshape(2, 3))
>>> graph = ModelGraph(name="demo", input_shape=(-1, 3), output_labels=("a", "b"),
...                    ops=(), tensors=b.tensors, meta={})
>>> blob = encode(graph, b.arena())
>>> m = decode(blob)
>>> m.graph.name, m.header.n_blocks, m.tensor_array("fc.w").tolist()
('demo', 1, [[0, 1, 2], [3, 4, 5]])
>>> verify(blob)
[]
"""

from __future__ import annotations

import hashlib
import hmac as hmac_mod
import itertools
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fsw.ai.crc import crc32c
from fsw.ai.errors import ModelIntegrityError

MAGIC = b"\x89GNM\r\n\x1a\n"  # PNG-style: catches 7-bit and CRLF/LF mangling in transfer
VERSION_MAJOR = 1
VERSION_MINOR = 1  # 1.1 adds the text-encoder ops; a graph without them is written as 1.0
HEADER_SIZE = 64
BLOCK_SIZE = 4096
ARENA_ALIGN = 4096  # arena starts on a page boundary of the file
TENSOR_ALIGN = 64  # every tensor starts on a cache line of the arena
SHA_SIZE = 32
HMAC_SIZE = 32
FLAG_HMAC = 0x1
MAX_GRAPH_BYTES = 1 << 20
MAX_ARENA_BYTES = 1 << 31

_HEADER = struct.Struct("<8sHHIIIIIIIQQI")  # everything but the trailing header CRC
assert _HEADER.size == HEADER_SIZE - 4

DTYPES: dict[str, np.dtype[Any]] = {
    "int8": np.dtype("<i1"),
    "uint8": np.dtype("<u1"),
    "int32": np.dtype("<i4"),
    "float32": np.dtype("<f4"),
}
REGIONS = ("file", "header", "graph", "table-a", "table-b", "arena", "padding", "sha256", "hmac")


@dataclass(slots=True, frozen=True)
class Header:
    """The fixed 64-byte header."""

    version_major: int
    version_minor: int
    flags: int
    block_size: int
    n_blocks: int
    graph_offset: int
    graph_size: int
    table_a_offset: int
    table_b_offset: int
    arena_offset: int
    arena_size: int
    graph_crc: int

    @property
    def signed(self) -> bool:
        return bool(self.flags & FLAG_HMAC)

    @property
    def table_size(self) -> int:
        return 4 * (self.n_blocks + 1)

    @property
    def sha_offset(self) -> int:
        return self.table_b_offset + self.table_size

    @property
    def file_size(self) -> int:
        return self.sha_offset + SHA_SIZE + (HMAC_SIZE if self.signed else 0)

    def encode(self) -> bytes:
        body = _HEADER.pack(
            MAGIC,
            self.version_major,
            self.version_minor,
            self.flags,
            self.block_size,
            self.n_blocks,
            self.graph_offset,
            self.graph_size,
            self.table_a_offset,
            self.table_b_offset,
            self.arena_offset,
            self.arena_size,
            self.graph_crc,
        )
        return body + struct.pack("<I", crc32c(body))

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Header:
        """Parse and check the header (magic, CRC, version, geometry)."""
        if len(data) < HEADER_SIZE:
            raise ModelIntegrityError(
                "file", f"only {len(data)} bytes: too short for a model header (64 bytes)"
            )
        raw = bytes(data[:HEADER_SIZE])
        if raw[:8] != MAGIC:
            raise ModelIntegrityError(
                "header", "bad magic: not a Gnomon model file (.gnm)", offset=0
            )
        (stored_crc,) = struct.unpack_from("<I", raw, HEADER_SIZE - 4)
        computed = crc32c(raw[: HEADER_SIZE - 4])
        if stored_crc != computed:
            raise ModelIntegrityError(
                "header",
                f"header CRC-32C mismatch (stored {stored_crc:#010x}, computed {computed:#010x})",
                offset=0,
            )
        f = _HEADER.unpack(raw[: HEADER_SIZE - 4])
        h = cls(*f[1:])
        if h.version_major != VERSION_MAJOR:
            raise ModelIntegrityError(
                "header",
                f"format version {h.version_major}.{h.version_minor} is not supported "
                f"(this runtime reads {VERSION_MAJOR}.x)",
            )
        h._check_geometry()
        return h

    def _check_geometry(self) -> None:
        def bad(why: str) -> ModelIntegrityError:
            return ModelIntegrityError("header", f"inconsistent geometry: {why}")

        if self.flags & ~FLAG_HMAC:
            raise bad(f"unknown flags {self.flags:#x}")
        if self.block_size < 64 or self.block_size > (1 << 20) or self.block_size % 64:
            raise bad(f"block size {self.block_size}")
        if not 0 < self.arena_size <= MAX_ARENA_BYTES:
            raise bad(f"arena size {self.arena_size}")
        if self.n_blocks != math.ceil(self.arena_size / self.block_size):
            raise bad(f"{self.n_blocks} blocks for an arena of {self.arena_size} bytes")
        if self.graph_offset != HEADER_SIZE or not 0 < self.graph_size <= MAX_GRAPH_BYTES:
            raise bad(f"graph at {self.graph_offset}, {self.graph_size} bytes")
        if self.table_a_offset < self.graph_offset + self.graph_size:
            raise bad("table A overlaps the graph")
        if self.arena_offset % ARENA_ALIGN or self.arena_offset < (
            self.table_a_offset + self.table_size
        ):
            raise bad(f"arena offset {self.arena_offset}")
        if self.table_b_offset != self.arena_offset + self.arena_size:
            raise bad("table B does not follow the arena")


@dataclass(slots=True, frozen=True)
class TensorInfo:
    """One entry of the tensor table: where a tensor lives in the arena."""

    name: str
    dtype: str  # 'int8' | 'uint8' | 'int32' | 'float32'
    shape: tuple[int, ...]
    offset: int  # byte offset in the arena
    nbytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "offset": self.offset,
            "nbytes": self.nbytes,
        }


@dataclass(slots=True, frozen=True)
class OpSpec:
    """One node of the op graph.

    ``tensors`` maps a role (``weight``, ``bias``, ...) to a tensor-table name; ``attrs``
    holds small constants (stride, padding, clamp range).
    """

    kind: str
    name: str
    input: str
    output: str
    tensors: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "tensors": dict(self.tensors),
            "attrs": dict(self.attrs),
        }


@dataclass(slots=True, frozen=True)
class ModelGraph:
    """Everything in the graph section."""

    name: str
    input_shape: tuple[int, ...]  # -1 for the batch dimension
    output_labels: tuple[str, ...]
    ops: tuple[OpSpec, ...]
    tensors: tuple[TensorInfo, ...]
    meta: Mapping[str, Any]

    def to_json_bytes(self) -> bytes:
        doc = {
            "format": "gnomon-model",
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_labels": list(self.output_labels),
            "ops": [op.to_json() for op in self.ops],
            "tensors": [t.to_json() for t in self.tensors],
            "meta": dict(self.meta),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    def tensor(self, name: str) -> TensorInfo:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


class ArenaBuilder:
    """Packs numpy arrays into one arena, each 64-byte aligned.

    >>> b = ArenaBuilder()
    >>> b.add("x", np.zeros(3, dtype=np.float32)).offset, b.add("y", np.ones(2, np.int32)).offset
    (0, 64)
    >>> len(b.arena())
    72
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._tensors: list[TensorInfo] = []

    def add(self, name: str, array: np.ndarray) -> TensorInfo:
        dtype_name = next((k for k, v in DTYPES.items() if v == array.dtype), None)
        if dtype_name is None:
            raise ModelIntegrityError("graph", f"tensor {name!r}: unsupported dtype {array.dtype}")
        if any(t.name == name for t in self._tensors):
            raise ModelIntegrityError("graph", f"tensor {name!r} added twice")
        pad = (-len(self._buf)) % TENSOR_ALIGN
        self._buf += bytes(pad)
        data = np.ascontiguousarray(array, dtype=DTYPES[dtype_name]).tobytes()
        shape = tuple(int(d) for d in array.shape)
        info = TensorInfo(name, dtype_name, shape, len(self._buf), len(data))
        self._buf += data
        self._tensors.append(info)
        return info

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        return tuple(self._tensors)

    def arena(self) -> bytes:
        return bytes(self._buf)


def block_crcs(arena: bytes | memoryview | np.ndarray, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """CRC-32C of every ``block_size`` block of ``arena`` (last block shorter), uint32."""
    mv = memoryview(arena).cast("B") if not isinstance(arena, np.ndarray) else arena
    n = math.ceil(len(mv) / block_size)
    return np.array(
        [crc32c(mv[i * block_size : (i + 1) * block_size]) for i in range(n)], dtype=np.uint32
    )


def _encode_table(crcs: np.ndarray) -> bytes:
    body = crcs.astype("<u4").tobytes()
    return body + struct.pack("<I", crc32c(body))


def encode(
    graph: ModelGraph,
    arena: bytes,
    *,
    hmac_key: bytes | None = None,
    block_size: int = BLOCK_SIZE,
) -> bytes:
    """The complete ``.gnm`` file for ``graph`` and its ``arena`` (deterministic bytes).

    With ``hmac_key`` the file is signed (HMAC-SHA256 trailer, header flag bit 0).
    """
    _validate_graph(graph, len(arena))
    graph_bytes = graph.to_json_bytes()
    graph_bytes += b" " * ((-len(graph_bytes)) % 8)  # JSON ignores trailing spaces
    crcs = block_crcs(arena, block_size)
    table = _encode_table(crcs)
    table_a_offset = HEADER_SIZE + len(graph_bytes)
    arena_offset = _round_up(table_a_offset + len(table), ARENA_ALIGN)
    header = Header(
        version_major=VERSION_MAJOR,
        version_minor=0 if all(op.kind in OPS_1_0 for op in graph.ops) else VERSION_MINOR,
        flags=FLAG_HMAC if hmac_key is not None else 0,
        block_size=block_size,
        n_blocks=len(crcs),
        graph_offset=HEADER_SIZE,
        graph_size=len(graph_bytes),
        table_a_offset=table_a_offset,
        table_b_offset=arena_offset + len(arena),
        arena_offset=arena_offset,
        arena_size=len(arena),
        graph_crc=crc32c(graph_bytes),
    )
    header._check_geometry()
    out = bytearray(header.encode())
    out += graph_bytes
    out += table
    out += bytes(arena_offset - len(out))
    out += arena
    out += table
    out += hashlib.sha256(out).digest()
    if hmac_key is not None:
        out += hmac_mod.new(hmac_key, bytes(out), hashlib.sha256).digest()
    return bytes(out)


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


@dataclass(slots=True, frozen=True)
class Problem:
    """One finding of :func:`verify`: the region, a block (arena only) and a message."""

    region: str
    message: str
    block: int | None = None
    offset: int | None = None

    def as_error(self) -> ModelIntegrityError:
        return ModelIntegrityError(self.region, self.message, block=self.block, offset=self.offset)


@dataclass(slots=True, frozen=True)
class GnmFile:
    """A fully verified model file."""

    header: Header
    graph: ModelGraph
    crc_table: np.ndarray  # uint32 (n_blocks,)
    sha256: bytes
    data: bytes

    @property
    def arena(self) -> memoryview:
        h = self.header
        return memoryview(self.data)[h.arena_offset : h.arena_offset + h.arena_size]

    def tensor_array(self, name: str) -> np.ndarray:
        """A read-only numpy view of one tensor in the file's arena."""
        t = self.graph.tensor(name)
        return np.frombuffer(
            self.arena, DTYPES[t.dtype], t.nbytes // DTYPES[t.dtype].itemsize, t.offset
        ).reshape(t.shape)


def read_table(data: bytes | memoryview, offset: int, n_blocks: int) -> np.ndarray | None:
    """The CRC table copy at ``offset`` if its own CRC holds, else ``None``."""
    size = 4 * (n_blocks + 1)
    raw = bytes(data[offset : offset + size])
    if len(raw) != size:
        return None
    (stored,) = struct.unpack_from("<I", raw, size - 4)
    if crc32c(raw[:-4]) != stored:
        return None
    return np.frombuffer(raw[:-4], dtype="<u4").astype(np.uint32)


def verify(data: bytes, *, hmac_key: bytes | None = None) -> list[Problem]:
    """Every problem found in a model file; an empty list means the file is intact.

    Checks the header, the graph CRC and schema, both CRC-table copies, every arena block,
    the zero padding, the whole-file SHA-256 and, with ``hmac_key``, the signature.
    A damaged header stops the search (the other offsets cannot be trusted).
    """
    try:
        h = Header.decode(data)
    except ModelIntegrityError as e:
        return [Problem(e.region, e.detail, offset=e.offset)]
    problems: list[Problem] = []
    if len(data) != h.file_size:
        what = "truncated" if len(data) < h.file_size else "has trailing bytes"
        problems.append(
            Problem("file", f"file {what}: {len(data)} bytes, header says {h.file_size}")
        )
        if len(data) < h.file_size:
            return problems
    mv = memoryview(data)
    problems += _graph_problems(mv, h)
    table_problems, table = _table_problems(mv, h)
    problems += table_problems
    pad_start = h.table_a_offset + h.table_size
    if any(mv[pad_start : h.arena_offset]):
        problems.append(
            Problem("padding", "padding before the arena is not zero", offset=pad_start)
        )
    problems += _arena_problems(mv, h, table)
    problems += _sha_problems(mv, h, sections_ok=not problems)
    if hmac_key is not None:
        problems += _hmac_problems(mv, h, hmac_key)
    return problems


def _graph_problems(mv: memoryview, h: Header) -> list[Problem]:
    graph_bytes = bytes(mv[h.graph_offset : h.graph_offset + h.graph_size])
    if crc32c(graph_bytes) != h.graph_crc:
        return [Problem("graph", "graph section fails its CRC-32C", offset=h.graph_offset)]
    try:
        _parse_graph(graph_bytes, h.arena_size)
    except ModelIntegrityError as e:
        return [Problem(e.region, e.detail)]
    return []


def _table_problems(mv: memoryview, h: Header) -> tuple[list[Problem], np.ndarray | None]:
    """Problems of the two CRC-table copies, and the copy to check the arena against."""
    problems: list[Problem] = []
    table_a = read_table(mv, h.table_a_offset, h.n_blocks)
    table_b = read_table(mv, h.table_b_offset, h.n_blocks)
    if table_a is None:
        problems.append(Problem("table-a", "CRC table copy A is damaged", offset=h.table_a_offset))
    if table_b is None:
        problems.append(Problem("table-b", "CRC table copy B is damaged", offset=h.table_b_offset))
    if table_a is not None and table_b is not None and not np.array_equal(table_a, table_b):
        problems.append(Problem("table-b", "CRC table copies A and B disagree"))
    return problems, table_a if table_a is not None else table_b


def _arena_problems(mv: memoryview, h: Header, table: np.ndarray | None) -> list[Problem]:
    if table is None:
        return [Problem("arena", "both CRC tables are damaged: arena cannot be checked")]
    arena = mv[h.arena_offset : h.arena_offset + h.arena_size]
    crcs = block_crcs(arena, h.block_size)
    problems = []
    for i in np.flatnonzero(crcs != table):
        lo = int(i) * h.block_size
        hi = min(lo + h.block_size, h.arena_size) - 1
        problems.append(
            Problem(
                "arena",
                f"block {int(i)} (arena bytes {lo}..{hi}) fails CRC-32C "
                f"(expected {int(table[i]):#010x}, computed {int(crcs[i]):#010x})",
                block=int(i),
                offset=h.arena_offset + lo,
            )
        )
    return problems


def _sha_problems(mv: memoryview, h: Header, *, sections_ok: bool) -> list[Problem]:
    digest = hashlib.sha256(mv[: h.sha_offset]).digest()
    if digest == bytes(mv[h.sha_offset : h.sha_offset + SHA_SIZE]):
        return []
    if sections_ok:
        return [
            Problem(
                "sha256",
                "stored SHA-256 is damaged (every section checks out)",
                offset=h.sha_offset,
            )
        ]
    return [Problem("sha256", "whole-file SHA-256 mismatch")]


def _hmac_problems(mv: memoryview, h: Header, hmac_key: bytes) -> list[Problem]:
    if not h.signed:
        return [Problem("hmac", "file is not signed but a signature is required")]
    end = h.sha_offset + SHA_SIZE
    mac = hmac_mod.new(hmac_key, mv[:end], hashlib.sha256).digest()
    if not hmac_mod.compare_digest(mac, bytes(mv[end : end + HMAC_SIZE])):
        return [Problem("hmac", "HMAC-SHA256 signature does not match: wrong key or forged")]
    return []


def decode(data: bytes, *, hmac_key: bytes | None = None) -> GnmFile:
    """Verify ``data`` completely and return the parsed file.

    Raises :class:`ModelIntegrityError` for the first problem :func:`verify` finds.
    """
    problems = verify(data, hmac_key=hmac_key)
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelIntegrityError(
            first.region, first.message + more, block=first.block, offset=first.offset
        )
    h = Header.decode(data)
    graph = _parse_graph(bytes(data[h.graph_offset : h.graph_offset + h.graph_size]), h.arena_size)
    table = read_table(data, h.table_a_offset, h.n_blocks)
    assert table is not None  # verify() passed
    return GnmFile(
        header=h,
        graph=graph,
        crc_table=table,
        sha256=bytes(data[h.sha_offset : h.sha_offset + SHA_SIZE]),
        data=bytes(data),
    )


# --- graph schema -------------------------------------------------------------------------

# role -> (dtype, rank); shapes are checked against the weight by _check_op.
OP_SCHEMA: dict[str, dict[str, tuple[str, int]]] = {
    "quantize": {"inv_scale": ("float32", 1)},
    "conv2d": {
        "weight": ("int8", 4),
        "bias": ("int32", 1),
        "scale": ("float32", 1),
        "multiplier": ("float32", 1),
    },
    "avgpool_global": {},
    "linear": {
        "weight": ("int8", 2),
        "bias": ("int32", 1),
        "scale": ("float32", 1),
        "dequant": ("float32", 1),
        "clip": ("float32", 2),
    },
    # --- format 1.1: a transformer text encoder (token ids in, float32 activations) ---
    "embed": {
        "word": ("int8", 2),
        "word_scale": ("float32", 1),
        "position": ("int8", 2),
        "position_scale": ("float32", 1),
        "token_type": ("float32", 1),
        "ln_weight": ("float32", 1),
        "ln_bias": ("float32", 1),
    },
    "dense": {
        "weight": ("int8", 2),
        "scale": ("float32", 1),
        "bias": ("float32", 1),
        "clip": ("float32", 1),
        "smooth": ("float32", 1),
    },
    "attention": {},
    "add_layernorm": {"weight": ("float32", 1), "bias": ("float32", 1)},
    "gelu": {},
    "mean_pool": {},
    "l2_normalize": {},
}
#: Op kinds of format 1.0; a graph using any other kind is written as version 1.1.
OPS_1_0 = frozenset({"quantize", "conv2d", "avgpool_global", "linear"})


def _err(why: str) -> ModelIntegrityError:
    return ModelIntegrityError("graph", why)


def _want(cond: bool, why: str) -> None:
    if not cond:
        raise _err(why)


def _int_list(v: object, what: str, n: int | None = None) -> tuple[int, ...]:
    _want(
        isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        f"{what} must be a list of integers",
    )
    assert isinstance(v, list)
    _want(n is None or len(v) == n, f"{what} must have {n} entries")
    return tuple(v)


def _parse_graph(raw: bytes, arena_size: int) -> ModelGraph:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _err(f"graph is not valid JSON ({e.__class__.__name__})") from None
    _want(isinstance(doc, dict), "graph must be a JSON object")
    _want(doc.get("format") == "gnomon-model", "graph 'format' is not 'gnomon-model'")
    name = doc.get("name")
    _want(isinstance(name, str) and 0 < len(name) <= 64, "model name missing or too long")
    input_shape = _int_list(doc.get("input_shape"), "input_shape")
    labels = doc.get("output_labels")
    _want(
        isinstance(labels, list) and all(isinstance(x, str) for x in labels),
        "output_labels must be a list of strings",
    )
    meta = doc.get("meta")
    _want(isinstance(meta, dict), "meta must be an object")
    tensors = _parse_tensors(doc.get("tensors"), arena_size)
    ops = _parse_ops(doc.get("ops"), {t.name: t for t in tensors})
    return ModelGraph(
        name=str(name),
        input_shape=input_shape,
        output_labels=tuple(str(x) for x in labels),
        ops=tuple(ops),
        tensors=tuple(tensors),
        meta=meta,
    )


def _parse_tensors(raw_tensors: Any, arena_size: int) -> list[TensorInfo]:
    """The graph's tensor table: typed, aligned, inside the arena, not overlapping."""
    tensors: list[TensorInfo] = []
    _want(isinstance(raw_tensors, list), "tensors must be a list")
    for t in raw_tensors:
        _want(isinstance(t, dict), "tensor entry must be an object")
        tname, dtype = t.get("name"), t.get("dtype")
        _want(isinstance(tname, str), "tensor name must be a string")
        _want(dtype in DTYPES, f"tensor {tname!r}: unknown dtype {dtype!r}")
        shape = _int_list(t.get("shape"), f"tensor {tname!r} shape")
        _want(all(0 < d <= 1 << 24 for d in shape), f"tensor {tname!r}: bad shape {shape}")
        offset, nbytes = t.get("offset"), t.get("nbytes")
        _want(isinstance(offset, int) and isinstance(nbytes, int), f"tensor {tname!r}: bad extent")
        assert isinstance(offset, int) and isinstance(nbytes, int)
        itemsize = DTYPES[dtype].itemsize
        _want(nbytes == math.prod(shape) * itemsize, f"tensor {tname!r}: size does not match shape")
        _want(offset % TENSOR_ALIGN == 0, f"tensor {tname!r}: offset {offset} not 64-byte aligned")
        _want(offset >= 0 and offset + nbytes <= arena_size, f"tensor {tname!r}: outside the arena")
        tensors.append(TensorInfo(tname, dtype, shape, offset, nbytes))
    names = [t.name for t in tensors]
    _want(len(set(names)) == len(names), "duplicate tensor names")
    ordered = sorted(tensors, key=lambda t: t.offset)
    for a, b in itertools.pairwise(ordered):
        _want(a.offset + a.nbytes <= b.offset, f"tensors {a.name!r} and {b.name!r} overlap")
    return tensors


def _parse_ops(raw_ops: Any, by_name: Mapping[str, TensorInfo]) -> list[OpSpec]:
    """The graph's operations, each checked against its schema and the tensor table."""
    ops: list[OpSpec] = []
    _want(isinstance(raw_ops, list), "ops must be a list")
    for o in raw_ops:
        _want(isinstance(o, dict), "op entry must be an object")
        kind = o.get("kind")
        _want(kind in OP_SCHEMA, f"unknown op kind {kind!r}")
        oname, oin, oout = o.get("name"), o.get("input"), o.get("output")
        _want(
            isinstance(oname, str) and isinstance(oin, str) and isinstance(oout, str),
            f"{kind} op: name/input/output must be strings",
        )
        assert isinstance(oname, str) and isinstance(oin, str) and isinstance(oout, str)
        roles, attrs = o.get("tensors"), o.get("attrs")
        _want(isinstance(roles, dict) and isinstance(attrs, dict), f"{kind} op: bad tensors/attrs")
        assert isinstance(roles, dict) and isinstance(attrs, dict)
        op = OpSpec(str(kind), oname, oin, oout, tensors=dict(roles), attrs=dict(attrs))
        _check_op(op, by_name)
        ops.append(op)
    return ops


def _check_op(op: OpSpec, by_name: Mapping[str, TensorInfo]) -> None:
    schema = OP_SCHEMA[op.kind]
    _want(set(op.tensors) == set(schema), f"op {op.name!r}: tensors must be {sorted(schema)}")
    shapes: dict[str, tuple[int, ...]] = {}
    for role, (dtype, rank) in schema.items():
        tname = op.tensors[role]
        _want(isinstance(tname, str) and tname in by_name, f"op {op.name!r}: no tensor {tname!r}")
        t = by_name[tname]
        _want(
            t.dtype == dtype and len(t.shape) == rank,
            f"op {op.name!r}: {role} must be {dtype} of rank {rank}",
        )
        shapes[role] = t.shape
    if op.kind in ("conv2d", "linear"):
        cout = shapes["weight"][0]
        for role in ("bias", "scale", "multiplier", "dequant"):
            if role in shapes:
                _want(shapes[role] == (cout,), f"op {op.name!r}: {role} must have {cout} entries")
        if "clip" in shapes:
            _want(shapes["clip"] == (2, cout), f"op {op.name!r}: clip must be (2, {cout})")
    if op.kind == "quantize":
        _want(shapes["inv_scale"] == (1,), f"op {op.name!r}: inv_scale must have one entry")
    if op.kind in ("conv2d", "quantize"):
        q = _int_list(op.attrs.get("clamp"), f"op {op.name!r} clamp", 2)
        _want(-128 <= q[0] < q[1] <= 127, f"op {op.name!r}: clamp must lie in -128..127")
    if op.kind in _TEXT_CHECKS:
        _TEXT_CHECKS[op.kind](op, shapes)
    if op.kind == "conv2d":
        s = _int_list(op.attrs.get("stride"), f"op {op.name!r} stride", 2)
        p = _int_list(op.attrs.get("padding"), f"op {op.name!r} padding", 2)
        _want(
            all(1 <= v <= 16 for v in s) and all(0 <= v <= 16 for v in p),
            f"op {op.name!r}: stride/padding out of range",
        )


def _check_embed(op: OpSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    (v, h), (p, h2) = shapes["word"], shapes["position"]
    _want(h == h2, f"op {op.name!r}: word and position widths differ")
    _want(shapes["word_scale"] == (v,), f"op {op.name!r}: word_scale must have {v} entries")
    _want(shapes["position_scale"] == (p,), f"op {op.name!r}: position_scale must have {p}")
    for role in ("token_type", "ln_weight", "ln_bias"):
        _want(shapes[role] == (h,), f"op {op.name!r}: {role} must have {h} entries")
    _eps(op)


def _check_dense(op: OpSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    cout = shapes["weight"][0]
    for role in ("scale", "bias"):
        _want(shapes[role] == (cout,), f"op {op.name!r}: {role} must have {cout} entries")
    _want(shapes["clip"] == (2,), f"op {op.name!r}: clip must be [lo, hi]")
    k = shapes["weight"][1]
    _want(shapes["smooth"] == (k,), f"op {op.name!r}: smooth must have {k} entries")
    _want(
        op.attrs.get("act_quant", "symmetric") in ("symmetric", "asymmetric"),
        f"op {op.name!r}: act_quant must be 'symmetric' or 'asymmetric'",
    )


def _check_attention(op: OpSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    heads = op.attrs.get("heads")
    _want(
        isinstance(heads, int) and not isinstance(heads, bool) and 1 <= heads <= 256,
        f"op {op.name!r}: heads must be 1..256",
    )
    _named_input(op, "mask")


def _check_add_layernorm(op: OpSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    _want(shapes["weight"] == shapes["bias"], f"op {op.name!r}: weight and bias differ")
    _named_input(op, "residual")
    _eps(op)


def _check_mean_pool(op: OpSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    _named_input(op, "mask")


def _named_input(op: OpSpec, attr: str) -> None:
    v = op.attrs.get(attr)
    _want(isinstance(v, str) and 0 < len(v) <= 64, f"op {op.name!r}: {attr} must name a value")


def _eps(op: OpSpec) -> None:
    eps = op.attrs.get("eps")
    _want(isinstance(eps, float) and 0.0 < eps < 1.0, f"op {op.name!r}: eps must be a small float")


_TEXT_CHECKS = {
    "embed": _check_embed,
    "dense": _check_dense,
    "attention": _check_attention,
    "add_layernorm": _check_add_layernorm,
    "mean_pool": _check_mean_pool,
}


def _validate_graph(graph: ModelGraph, arena_size: int) -> None:
    """Writer-side check: what we write must parse back."""
    _parse_graph(graph.to_json_bytes(), max(arena_size, 1))


def parse_graph(raw: bytes, arena_size: int) -> ModelGraph:
    """Parse a graph section on its own (used by tools; :func:`decode` calls it)."""
    return _parse_graph(raw, arena_size)
