"""CFDP end to end in SITL: the simulated ground uploads models through the lossy, pass-gated
RF channel (SDLS, COP-1, CLTUs), activates one, rolls it back, sees a corrupted upload
refused, and fetches an on-board file into OUT/files/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fsw.ai.payload import Payload
from ground.files import list_files
from hil.sim.sitl import Sitl
from hil.sim.sitl_config import make_config

SMALL_MODEL = Path(__file__).resolve().parents[1] / "fsw" / "ai" / "artifacts" / "cloudnet-s.gnm"


@pytest.mark.slow
@pytest.mark.req("CFDP-002", "CFDP-003")
def test_model_upload_activate_rollback_and_refusal_end_to_end_in_sitl(tmp_path: Path) -> None:
    sitl = Sitl("sitl-short", make_config("sitl-short", orbits=0.25, seed=3), out_dir=tmp_path)
    assert sitl.ground is not None
    session = sitl.ground.session
    files = session.files
    payload = sitl.fs.component("payload")
    assert isinstance(payload, Payload)
    original = payload.models["small"]
    # This test is about uploads and one file fetched by command: no automatic product
    # delivery on sitl-short's 9.6 kbit/s downlink (tests/test_cfdp_flight.py has those).
    sitl.fs.prm.set("cfdp.product_transfers", 0)
    (tmp_path / "up").mkdir()
    good, bad = tmp_path / "up" / "v2.gnm", tmp_path / "up" / "bad.gnm"
    good.write_bytes(SMALL_MODEL.read_bytes())
    blob = bytearray(SMALL_MODEL.read_bytes())
    blob[-100] ^= 0x04  # the model's own SHA-256 no longer matches
    bad.write_bytes(bytes(blob))
    up_good = files.put(good, "uplink/models/v2.gnm")
    up_bad = files.put(bad, "uplink/models/bad.gnm")
    (tmp_path / "board" / "files" / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "board" / "files" / "logs" / "seu.log").write_bytes(b"SEU log\n" * 3000)

    pending: list[bytes] = []
    orig_tick = sitl.ground.tick

    def tick(*a: Any, **k: Any) -> list[bytes]:
        out = orig_tick(*a, **k)
        out += pending
        pending.clear()
        return out

    sitl.ground.tick = tick  # type: ignore[method-assign]
    steps: list[str] = []
    seen: dict[str, Any] = {}

    def events(name: str) -> bool:
        return any(e.name == f"cfdp.{name}" for e in sitl.fs.recent_events)

    def hook(t: float, total: float) -> None:
        now = sitl.clock.now_tai()
        if not steps and up_good.done:
            steps.append("activate")
            pending.extend(
                session.send(
                    "cfdp.MODEL_ACTIVATE", now, variant="small", path="uplink/models/v2.gnm"
                )[1]
            )
            pending.extend(
                session.send(
                    "cfdp.FILE_SEND", now, path="logs/seu.log", dest="logs/seu.log", acknowledged=1
                )[1]
            )
        elif steps == ["activate"] and events("MODEL_ACTIVATED"):
            seen["active"] = payload.models["small"]
            steps.append("rollback")
            pending.extend(session.send("cfdp.MODEL_ROLLBACK", now, variant="small")[1])

    sitl.run(progress=hook)
    assert up_good.state == "finished" and up_bad.state == "finished"  # CFDP delivered both
    assert events("UPLOAD_REFUSED")  # ... and the flight refused the damaged model
    assert not (tmp_path / "board" / "files" / "uplink" / "models" / "bad.gnm").exists()
    assert steps == ["activate", "rollback"]
    assert seen["active"] is not original and events("MODEL_ROLLED_BACK")
    assert payload.models["small"] is original
    assert (tmp_path / "files" / "logs" / "seu.log").read_bytes() == b"SEU log\n" * 3000
    rows = [r for r in list_files(tmp_path / "archive.sqlite") if r.direction == "in"]
    assert [(r.name, r.state) for r in rows] == [("logs/seu.log", "finished")]
