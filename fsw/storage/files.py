"""The ``files`` component: the on-board file store and the payload's data products.

Every frame the payload keeps becomes a *data product* in the file store: a PNG quick look
(any image viewer opens it), the raw bands as ``.npy`` (numpy, or any reader of the
documented format) and a JSON sidecar with what the ground needs to judge it: capture
time, sub-satellite point, model and variant, confidence, cloud fraction, the scheduler's
value of the frame (its target priority) and the downlink value (value x confidence), and
each file's size and CRC-32C.

Each file is written to a temporary name, fsynced and renamed, and the sidecar is written
last: after a reset a product is either whole (its sidecar lists files that check) or it
never appears; leftovers are removed and counted at boot. :func:`check_files` is the
integrity check (every sidecar's files exist and match their CRCs).

The store is a directory with areas (``products``, ``logs``, ``uplink``), each with a
quota in bytes; a product that does not fit is refused with an event, counted. Files the
ground has confirmed (``mark_delivered``) may be deleted by command.

>>> from fsw.app import build_flight
>>> fs = build_flight()
>>> files = fs.component("files")
>>> sorted(files.quotas)
['logs', 'products', 'uplink']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from crc32c import crc32c

from fsw.core import Arg, Channel, CommandFailed, Component, Event, FailureCode, Severity, command
from fsw.core.clock import tai_to_datetime
from fsw.storage.errors import StorageError

if TYPE_CHECKING:  # the flight imports torch only when a model is loaded
    from fsw.ai.runtime import Prediction
    from fsw.hal.interfaces import CameraFrame

MIB = 1 << 20
#: Default quotas per area (design choices: a default SITL frame's product is 0.61 MB,
#: 35 products of 21.2 MB in a 1-orbit run, so ``products`` holds some 440 kept frames;
#: docs/components/files.md).
DEFAULT_QUOTAS: Mapping[str, int] = {"products": 256 * MIB, "logs": 16 * MIB, "uplink": 64 * MIB}
#: Raw bands are stored as uint16 reflectance x 10,000 (the quantification of
#: Sentinel-2 Level-2A products: ESA, Sentinel-2 Products Specification Document,
#: BOA_QUANTIFICATION_VALUE = 10000), half the size of float32.
REFLECTANCE_SCALE = 10_000
_TMP_SUFFIX = ".part"


# ---------------------------------------------------------------------------- PNG
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(image: np.ndarray) -> bytes:
    """A PNG (8-bit greyscale for (h, w), RGB for (h, w, 3)) of a uint8 image.

    The PNG format (ISO/IEC 15948) needs only zlib and CRC-32, both in Python's standard
    library, so the flight carries no image library for it (the tests decode it with
    Pillow).

    >>> png = encode_png(np.zeros((2, 3), np.uint8))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", len(png)
    (True, 68)
    """
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim == 2:
        colour, h, w = 0, *img.shape
    elif img.ndim == 3 and img.shape[2] == 3:
        colour, h, w = 2, img.shape[0], img.shape[1]
    else:
        raise StorageError(f"a PNG needs an (h, w) or (h, w, 3) image, not {img.shape}")
    rows = img.reshape(h, -1)
    raw = np.zeros((h, rows.shape[1] + 1), np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def quicklook(pixels: np.ndarray) -> np.ndarray:
    """An 8-bit image of a frame: tiles (n, bands, h, w) laid out in a square-ish grid,
    the first three bands as RGB (one band: grey), reflectance 0..0.4 stretched to 0..255
    (a common quick-look stretch: surface reflectance of land rarely passes 0.4).

    >>> quicklook(np.full((4, 3, 2, 2), 0.2, np.float32)).shape
    (4, 4, 3)
    """
    px = np.asarray(pixels, dtype=np.float32)
    if px.ndim == 3:
        px = px[None]
    if px.ndim != 4:
        raise StorageError(f"pixels of shape {px.shape}: expected (bands, h, w) or tiles of it")
    n, bands, h, w = px.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    chans = 3 if bands >= 3 else 1
    out = np.zeros((rows * h, cols * w, chans), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w, :] = np.moveaxis(px[i, :chans], 0, -1)
    img = np.clip(out / 0.4 * 255.0, 0, 255).astype(np.uint8)
    return img[:, :, 0] if chans == 1 else img


# ---------------------------------------------------------------------------- writing
def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` so that it exists whole or not at all (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@dataclass(slots=True)
class Product:
    """One data product in the store: what the downlink needs (the sidecar itself stays
    on disk, so a long mission's index stays small)."""

    name: str
    files: tuple[str, ...]
    bytes: int
    value: float
    delivered: bool = False


@dataclass(slots=True)
class FilesCheck:
    """:func:`check_files`'s answer: products that check, and what is wrong (empty: ok)."""

    products: int = 0
    files: int = 0
    bytes: int = 0
    problems: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_files(root: Path) -> FilesCheck:
    """Read-only integrity check of a file store: every sidecar parses and every file it
    lists exists with its size and CRC-32C; a file no sidecar lists (a product cut by a
    reset) or a temporary file is a problem too."""
    rep = FilesCheck(problems=[])
    assert rep.problems is not None
    products = root / "products"
    listed: set[str] = set()
    for side in sorted(products.glob("*.json")) if products.is_dir() else []:
        listed.add(side.name)
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
            entries = doc["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rep.problems.append(f"{side.name}: sidecar unreadable ({exc})")
            continue
        good = True
        for entry in entries:
            p = products / str(entry.get("name", ""))
            listed.add(p.name)
            try:
                data = p.read_bytes()
            except OSError:
                rep.problems.append(f"{side.name}: {p.name} is missing")
                good = False
                continue
            if len(data) != entry.get("bytes") or crc32c(data) != entry.get("crc32c"):
                rep.problems.append(f"{side.name}: {p.name} does not match its size or CRC")
                good = False
            rep.files += 1
            rep.bytes += len(data)
        rep.products += good
    for area in (products,) if products.is_dir() else ():
        for p in sorted(area.iterdir()):
            if p.name not in listed:
                rep.problems.append(f"{p.name}: not part of any complete product")
    return rep


# ---------------------------------------------------------------------------- component
class FileStore(Component):
    """The on-board file store: areas with quotas, the payload's data products."""

    NAME = "files"
    DESCRIPTION = "On-board file store with quotas; data products of kept frames."
    TELEMETRY = (
        Channel("products", "u32", description="data products held", id=4),
        Channel("products_created", "u32", description="data products written", id=5),
        Channel("bytes_created", "u32", units="B", description="bytes of products written", id=6),
        Channel(
            "products_refused",
            "u32",
            description="kept frames with no product (quota full, I/O error)",
            id=7,
        ),
        Channel(
            "products_pending",
            "u32",
            description="products not yet delivered to the ground",
            id=8,
        ),
        Channel(
            "fill_pct",
            "f32",
            units="%",
            description="fill of the products area",
            yellow=(None, 80.0),
            red=(None, 95.0),
            id=9,
        ),
        Channel(
            "leftovers_removed",
            "u32",
            description="partial files of products cut by a reset, removed at boot",
            id=10,
        ),
        Channel("products_delivered", "u32", description="products the ground confirmed", id=11),
    )
    EVENTS = (
        Event(
            "PRODUCT_REFUSED",
            Severity.MEDIUM,
            "frame {frame_id}: no data product ({reason})",
            (Arg("frame_id", "u32"), Arg("reason", "str", max_len=120)),
            id=1,
        ),
        Event(
            "LEFTOVERS_REMOVED",
            Severity.LOW,
            "file store at boot: {count} partial files of products cut by a reset removed",
            (Arg("count", "u32"),),
            id=2,
        ),
        Event(
            "PRODUCTS_DELETED",
            Severity.INFO,
            "{count} delivered products deleted ({bytes} bytes freed)",
            (Arg("count", "u32"), Arg("bytes", "u32", units="B")),
            id=3,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        root: Path | None,
        quotas: Mapping[str, int] = DEFAULT_QUOTAS,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gnomon-files-")
            root = Path(self._tmp.name)
        self.root = root
        self.quotas = dict(quotas)
        for area in self.quotas:
            try:
                (root / area).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"file store: cannot create {root / area}: {exc}") from None
        self.products: dict[str, Product] = {}
        self.counts = dict.fromkeys(
            (
                "created",
                "bytes_created",
                "refused",
                "delivered",
                "bytes_delivered",
                "deleted",
                "leftovers_removed",
            ),
            0,
        )
        self.value_created = 0.0
        self.value_delivered = 0.0
        self._used: dict[str, int] = {}
        self._load()

    # ------------------------------------------------------------------ boot
    def _load(self) -> None:
        """Index the products on disk; remove what a reset left half-written."""
        area = self.root / "products"
        listed: set[str] = set()
        for side in sorted(area.glob("*.json")):
            try:
                doc = json.loads(side.read_text(encoding="utf-8"))
                names = [str(e["name"]) for e in doc["files"]]
                size = sum(int(e["bytes"]) for e in doc["files"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # left for check_files to report; never deleted silently
            listed.add(side.name)
            listed.update(names)
            size += side.stat().st_size
            self.products[side.stem] = Product(
                side.stem,
                tuple(names),
                size,
                float(doc.get("downlink_value", 0.0)),
                bool(doc.get("delivered", False)),
            )
        for p in area.iterdir():
            if p.name not in listed and (
                p.suffix in (".png", ".npy") or p.name.endswith(_TMP_SUFFIX)
            ):
                with contextlib.suppress(OSError):
                    p.unlink()
                    self.counts["leftovers_removed"] += 1
        for a in self.quotas:
            self._used[a] = sum(p.stat().st_size for p in (self.root / a).iterdir() if p.is_file())

    def on_init(self) -> None:
        if self.counts["leftovers_removed"]:
            self.event("LEFTOVERS_REMOVED", self.counts["leftovers_removed"])
        self._publish()

    def close(self) -> None:
        """Remove a temporary store (a flight built without a storage directory)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ products
    def add_product(
        self,
        frame_id: int,
        pixels: np.ndarray,
        meta: Mapping[str, Any],
        value: float,
    ) -> Product | None:
        """Write the data product of one kept frame; None when refused (counted, with an
        event). ``meta`` goes into the sidecar as given; ``value`` is the downlink value
        (the scheduler's value x keep confidence)."""
        name = f"frame-{frame_id:010d}"
        try:
            png = encode_png(quicklook(pixels))
            raw = np.clip(np.rint(np.asarray(pixels) * REFLECTANCE_SCALE), 0, 65535)
            npy = _npy_bytes(raw.astype("<u2"))
        except (StorageError, ValueError) as exc:
            self._refuse(frame_id, f"frame unusable: {exc}")
            return None
        files = [(f"{name}.png", png), (f"{name}.npy", npy)]
        sidecar: dict[str, Any] = {
            "product": name,
            "frame_id": frame_id,
            **dict(meta),
            "downlink_value": round(value, 6),
            "raw_bands": {"dtype": "uint16", "scale": 1.0 / REFLECTANCE_SCALE},
            "files": [{"name": n, "bytes": len(d), "crc32c": crc32c(d)} for n, d in files],
        }
        side = json.dumps(sidecar, sort_keys=True, indent=1).encode("utf-8")
        total = len(png) + len(npy) + len(side)
        if self._used["products"] + total > self.quotas["products"]:
            self._refuse(frame_id, f"products area full ({self.quotas['products']} B)")
            return None
        area = self.root / "products"
        try:
            for n, d in files:
                _write_atomic(area / n, d)
            _write_atomic(area / f"{name}.json", side)  # last: the product now exists
        except OSError as exc:
            self._refuse(frame_id, f"write failed: {exc.strerror or exc}")
            return None
        prod = Product(name, tuple(n for n, _ in files), total, value)
        self.products[name] = prod
        self._used["products"] += total
        self.counts["created"] += 1
        self.counts["bytes_created"] += total
        self.value_created += value
        self._publish()
        return prod

    def on_kept_frame(
        self, frame: CameraFrame, prediction: Prediction, variant: str, model: str
    ) -> Product | None:
        """The payload kept ``frame``: write its data product (the payload's product
        sink). Its downlink value is the scheduler's value of the frame (its target
        priority) x the keep confidence."""
        meta = {
            "capture_tai": round(frame.t_tai, 3),
            "capture_utc": tai_to_datetime(frame.t_tai).isoformat(timespec="milliseconds"),
            "sub_satellite_point": {
                "lat_deg": round(frame.lat_deg, 5),
                "lon_deg": round(frame.lon_deg, 5),
            },
            "model": model,
            "variant": variant,
            "confidence": round(prediction.confidence, 5),
            "cloud_fraction": round(prediction.cloud_fraction, 5),
            "scheduler_value": round(frame.priority, 5),
        }
        return self.add_product(
            frame.frame_id, frame.pixels, meta, frame.priority * prediction.confidence
        )

    def _refuse(self, frame_id: int, reason: str) -> None:
        self.counts["refused"] += 1
        if self.is_bound:
            self.event("PRODUCT_REFUSED", frame_id & 0xFFFFFFFF, reason[:120])
            self._publish()
        return None

    def pending(self) -> list[Product]:
        """Products not yet delivered, most valuable first (then oldest first)."""
        return sorted(
            (p for p in self.products.values() if not p.delivered),
            key=lambda p: (-p.value, p.name),
        )

    def paths(self, product: Product) -> list[Path]:
        """The files of a product (sidecar last)."""
        area = self.root / "products"
        return [area / n for n in product.files] + [area / f"{product.name}.json"]

    def mark_delivered(self, name: str) -> None:
        """The ground has the product whole (the file transfer's Finished said so)."""
        prod = self.products.get(name)
        if prod is None or prod.delivered:
            return
        prod.delivered = True
        self.counts["delivered"] += 1
        self.counts["bytes_delivered"] += prod.bytes
        self.value_delivered += prod.value
        self._publish()

    # ------------------------------------------------------------------ telemetry
    def on_tick(self, rate_group: str) -> None:
        self._publish()

    def _publish(self) -> None:
        if not self.is_bound:
            return
        self.tlm("products", len(self.products))
        self.tlm("products_created", self.counts["created"] & 0xFFFFFFFF)
        self.tlm("bytes_created", self.counts["bytes_created"] & 0xFFFFFFFF)
        self.tlm("products_refused", self.counts["refused"] & 0xFFFFFFFF)
        self.tlm("products_pending", sum(not p.delivered for p in self.products.values()))
        self.tlm("products_delivered", self.counts["delivered"] & 0xFFFFFFFF)
        self.tlm("leftovers_removed", self.counts["leftovers_removed"] & 0xFFFFFFFF)
        q = self.quotas["products"]
        self.tlm("fill_pct", 100.0 * min(1.0, self._used["products"] / q) if q else 0.0)

    @command(
        "DELETE_DELIVERED",
        opcode=1,
        description="Delete every data product the ground has confirmed, freeing its quota.",
    )
    def delete_delivered(self) -> None:
        gone = [p for p in self.products.values() if p.delivered]
        freed = 0
        for prod in gone:
            for path in self.paths(prod):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            freed += prod.bytes
            del self.products[prod.name]
        if not gone:
            raise CommandFailed(FailureCode.VALUE_REJECTED, "no delivered product to delete")
        self._used["products"] = max(0, self._used["products"] - freed)
        self.counts["deleted"] += len(gone)
        self.event("PRODUCTS_DELETED", len(gone), min(freed, 0xFFFFFFFF))
        self._publish()

    def summary(self) -> dict[str, Any]:
        """What a run's summary reports (docs/sitl.md, ``files``)."""
        pending = [p for p in self.products.values() if not p.delivered]
        return {
            "created": self.counts["created"],
            "delivered": self.counts["delivered"],
            "bytes_created": self.counts["bytes_created"],
            "bytes_delivered": self.counts["bytes_delivered"],
            "value_created": round(self.value_created, 4),
            "value_delivered": round(self.value_delivered, 4),
            "pending_at_end": len(pending),
            "refused": self.counts["refused"],
        }


__all__ = [
    "DEFAULT_QUOTAS",
    "REFLECTANCE_SCALE",
    "FileStore",
    "FilesCheck",
    "Product",
    "check_files",
    "encode_png",
    "quicklook",
]
