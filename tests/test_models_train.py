"""Training, quantization and export: exact int8 rules, determinism, shipped artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import gnm, shipped_dir
from fsw.ai.runtime import Runtime
from models.errors import ModelError
from models.nets import ARCHS, CloudNet, arch
from models.quantize import _check_exact, _weight_quant, export, quantize
from models.train import REFERENCE_DIR, TrainConfig, build_artifacts, load_fp32

ARTIFACTS = shipped_dir()
TINY = TrainConfig(n_train=48, n_calib=16, epochs={"cloudnet-s": 1, "cloudnet-l": 1}, batch=16)


def test_weight_quantization_known_answer() -> None:
    w = np.array([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0], [-2.0, 1.0, 0.0]], dtype=np.float32)
    q, s = _weight_quant(w)
    assert q.dtype == np.int8 and s.dtype == np.float32
    assert q.tolist() == [[127, -64, 32], [0, 0, 0], [-127, 64, 0]]  # -63.5 rounds to even
    assert np.allclose(s, [1 / 127, 1.0, 2 / 127])


def test_exactness_bound_is_enforced() -> None:
    _check_exact("ok", 576, np.array([1 << 22], dtype=np.int32))
    with pytest.raises(ModelError, match="2\\*\\*24"):
        _check_exact("too-wide", 1100, np.zeros(1, dtype=np.int32))


def test_quantized_graph_uses_calibrated_ranges_and_is_deterministic() -> None:
    torch.manual_seed(0)
    net = CloudNet(arch("cloudnet-s")).eval()
    x = torch.rand(8, 4, 64, 64)
    graph, arena = quantize(net, x)
    m = gnm.decode(gnm.encode(graph, arena))
    inv = m.tensor_array("input.inv_scale")[0]
    assert inv == pytest.approx(127 / float(x.max()), rel=1e-6)
    assert m.tensor_array("conv2.w").dtype == np.int8
    assert np.abs(m.tensor_array("conv2.w")).max() == 127  # every channel uses the full range
    assert export(net, x) == export(net, x)
    with pytest.raises(ModelError):
        arch("cloudnet-xl")


def test_fp32_reference_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = CloudNet(ARCHS["cloudnet-l"])
    p = tmp_path / "w.npy"
    np.save(p, net.flat_parameters())
    back = load_fp32("cloudnet-l", p)
    x = torch.rand(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    with pytest.raises(ModelError, match="another model"):
        load_fp32("cloudnet-s", p)


def test_tiny_training_run_is_reproducible(tmp_path: Path) -> None:
    a = build_artifacts(tmp_path / "a", seed=3, config=TINY, archs=("cloudnet-s",))
    b = build_artifacts(tmp_path / "b", seed=3, config=TINY, archs=("cloudnet-s",))
    c = build_artifacts(tmp_path / "c", seed=4, config=TINY, archs=("cloudnet-s",))
    assert a.sha256 == b.sha256 != c.sha256
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    rt = Runtime.load(tmp_path / "a" / "cloudnet-s.gnm")
    assert rt.graph.meta["train"]["seed"] == 3


def test_shipped_artifacts_verify_and_are_small() -> None:
    for name in ARCHS:
        data = (ARTIFACTS / f"{name}.gnm").read_bytes()
        assert gnm.verify(data) == []
        assert len(data) < 200_000
        assert gnm.decode(data).graph.meta["train"]["seed"] == 0


@pytest.mark.slow
def test_training_reproduces_the_shipped_artifacts(tmp_path: Path) -> None:
    res = build_artifacts(tmp_path, seed=0)
    for p in res.files:
        shipped = ARTIFACTS / p.name if p.suffix == ".gnm" else REFERENCE_DIR / p.name
        assert (
            hashlib.sha256(p.read_bytes()).hexdigest()
            == hashlib.sha256(shipped.read_bytes()).hexdigest()
        ), p.name
