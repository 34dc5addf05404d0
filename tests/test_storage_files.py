"""The on-board file store and the data products of kept frames (fsw/storage/files.py)."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsw.ai.runtime import Prediction
from fsw.app import build_flight
from fsw.core.clock import DEFAULT_START_TAI, SimClock
from fsw.core.flight import FlightSoftware
from fsw.core.testing import CommandEncoder, decode_downlink
from fsw.hal.interfaces import CameraFrame
from fsw.storage.files import (
    REFLECTANCE_SCALE,
    FileStore,
    check_files,
    encode_png,
    quicklook,
)


def _frame(frame_id: int, seed: int = 0, priority: float = 2.0) -> CameraFrame:
    rng = np.random.default_rng(seed)
    px = rng.uniform(0.0, 0.6, size=(4, 4, 16, 16)).astype(np.float32)
    return CameraFrame(frame_id, DEFAULT_START_TAI + frame_id, 12.5, -45.25, priority, px)


def _files(fs: FlightSoftware) -> FileStore:
    comp = fs.component("files")
    assert isinstance(comp, FileStore)
    return comp


@pytest.mark.req("FIL-001")
def test_the_quick_look_is_a_png_any_viewer_opens_with_the_frame_s_pixels() -> None:
    rng = np.random.default_rng(7)
    for shape in ((5, 7), (6, 4, 3)):
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(img))))
        assert decoded.shape == img.shape and (decoded == img).all()
    look = quicklook(_frame(1).pixels)
    assert look.shape == (32, 32, 3)  # four 16x16 tiles in a 2x2 grid, bands 1-3 as RGB


@pytest.mark.req("FIL-002")
def test_a_kept_frame_becomes_a_png_the_raw_bands_and_a_sidecar(tmp_path: Path) -> None:
    fs = build_flight(SimClock(), files_dir=tmp_path)
    files = _files(fs)
    assert files.on_kept_frame in fs.component("payload").product_sinks  # type: ignore[attr-defined]
    frame = _frame(42)
    prod = files.on_kept_frame(frame, Prediction(True, 0.8, 0.1), "small", "cloudnet-s")
    assert prod is not None
    area = tmp_path / "products"
    side = json.loads((area / "frame-0000000042.json").read_text())
    assert side["capture_utc"].startswith("2026-11-21T00:00:42")
    assert side["sub_satellite_point"] == {"lat_deg": 12.5, "lon_deg": -45.25}
    assert (side["model"], side["variant"]) == ("cloudnet-s", "small")
    assert side["confidence"] == 0.8 and side["cloud_fraction"] == 0.1
    assert side["scheduler_value"] == 2.0 and side["downlink_value"] == pytest.approx(1.6)
    bands = np.load(area / "frame-0000000042.npy")
    assert bands.dtype == np.uint16 and bands.shape == frame.pixels.shape
    assert np.allclose(bands / REFLECTANCE_SCALE, frame.pixels, atol=1 / REFLECTANCE_SCALE)
    assert Image.open(area / "frame-0000000042.png").size == (32, 32)
    assert check_files(tmp_path).ok and check_files(tmp_path).products == 1
    assert fs.telemetry("files.products_created") == 1


@pytest.mark.req("FIL-003")
def test_a_product_over_quota_is_refused_with_an_event_and_counted(tmp_path: Path) -> None:
    fs = build_flight(SimClock())
    files = FileStore(tmp_path, {"products": 20_000, "logs": 1, "uplink": 1}, name="small")
    fs.add_component(files, component_id=40)
    made = [
        files.on_kept_frame(_frame(i, i), Prediction(True, 0.9, 0.0), "small", "m")
        for i in range(10)
    ]
    kept = sum(p is not None for p in made)
    assert 0 < kept < 10
    assert files.counts["refused"] == 10 - kept
    assert any(e.name == "small.PRODUCT_REFUSED" and "full" in e.text for e in fs.recent_events)
    assert check_files(tmp_path).ok  # nothing half-written left behind


@pytest.mark.req("FIL-005")
def test_pending_products_come_most_valuable_first_and_delivered_ones_can_be_deleted(
    tmp_path: Path,
) -> None:
    fs = build_flight(SimClock(), files_dir=tmp_path)
    files = _files(fs)
    for i, (prio, conf) in enumerate(((1.0, 0.9), (3.0, 0.6), (2.0, 0.99))):
        files.on_kept_frame(_frame(i, priority=prio), Prediction(True, conf, 0.0), "large", "m")
    assert [p.name[-1] for p in files.pending()] == ["2", "1", "0"]  # 1.98, 1.8, 0.9
    files.mark_delivered(files.pending()[0].name)
    assert files.summary()["delivered"] == 1
    assert files.summary()["value_delivered"] == pytest.approx(1.98)
    assert files.summary()["pending_at_end"] == 2
    fs.uplink_packet(CommandEncoder(fs).encode("files.DELETE_DELIVERED"))
    fs.step(0.0)
    assert [r.subservice for r in decode_downlink(fs) if r.service == 1][-1] == 7
    assert not (tmp_path / "products" / "frame-0000000002.png").exists()
    assert len(files.products) == 2 and check_files(tmp_path).ok


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from fsw.ai.runtime import Prediction
    from fsw.hal.interfaces import CameraFrame
    from fsw.storage.files import FileStore
    files = FileStore(Path(sys.argv[1]))
    px = np.random.default_rng(1).uniform(0, 0.5, size=(16, 4, 32, 32)).astype(np.float32)
    i = 0
    while True:
        files.on_kept_frame(CameraFrame(i, 1e9 + i, 0.0, 0.0, 1.0, px),
                            Prediction(True, 0.9, 0.1), "small", "m")
        i += 1
        sys.stdout.write(f"{i}\\n")
        sys.stdout.flush()
    """
)


@pytest.mark.req("FIL-004")
def test_kill_9_while_writing_products_leaves_whole_products_or_none(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(2**32)
    print(f"test_storage_files: kill seed {seed}")
    target = random.Random(seed).randrange(3, 30)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
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
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = check_files(tmp_path)
    assert before.problems is not None
    assert all("not part of any complete product" in p for p in before.problems)
    assert before.products >= written  # every product reported written is whole
    files = FileStore(tmp_path)  # the reboot: leftovers of the cut product removed
    after = check_files(tmp_path)
    assert after.ok and after.products == len(files.products) >= written
    assert files.counts["leftovers_removed"] == len(before.problems)
