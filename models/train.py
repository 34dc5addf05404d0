"""Train both CloudNets on synthetic tiles, quantize them and write the shipped artifacts.

``gnomon model train --out out/models --seed 0`` calls :func:`build_artifacts`; the
same seed gives the same bytes (training runs on one thread with seeded data order).

>>> cfg = TrainConfig(n_train=64, n_calib=16, epochs={"cloudnet-s": 1}, batch=32)
>>> res = build_artifacts("/tmp/gnomon-doctest", seed=0, config=cfg, archs=("cloudnet-s",))
>>> sorted(p.name for p in res.files)
['cloudnet-s.fp32.npy', 'cloudnet-s.gnm']
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from models import synth
from models.errors import ModelError
from models.nets import ARCHS, CloudNet, arch
from models.quantize import export

log = logging.getLogger(__name__)

# Held-out tiles for accuracy figures: a dataset seed never used for training by default.
HOLDOUT_SEED = 1_000_003
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(slots=True, frozen=True)
class TrainConfig:
    """Training recipe; the defaults build the shipped artifacts in a few minutes."""

    n_train: int = 6000
    n_calib: int = 512
    epochs: Mapping[str, int] = field(default_factory=lambda: {"cloudnet-s": 12, "cloudnet-l": 8})
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4


@dataclass(slots=True, frozen=True)
class TrainResult:
    """What :func:`build_artifacts` wrote."""

    files: tuple[Path, ...]
    sha256: Mapping[str, str]
    seconds: float


def train_net(
    name: str,
    x: torch.Tensor,
    cloud: torch.Tensor,
    keep: torch.Tensor,
    *,
    seed: int,
    config: TrainConfig,
    progress: Progress | None = None,
) -> CloudNet:
    """Train one architecture (deterministic for a seed on a given torch build)."""
    spec = arch(name)
    epochs = config.epochs.get(name)
    if epochs is None or epochs < 1:
        raise ModelError(f"no epoch count for {name} in the training config")
    torch.manual_seed(seed)
    net = CloudNet(spec)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = x.shape[0]
    steps = epochs * ((n + config.batch - 1) // config.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    targets = torch.stack([keep.float(), cloud], dim=1)
    done = 0
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for lo in range(0, n, config.batch):
            idx = order[lo : lo + config.batch]
            xb = x[idx]
            flip = torch.rand(4, generator=gen)  # label-preserving augmentation
            if flip[0] < 0.5:
                xb = xb.flip(3)
            if flip[1] < 0.5:
                xb = xb.flip(2)
            if flip[2] < 0.5:
                xb = xb.transpose(2, 3)
            logits = net(xb)
            loss = functional.binary_cross_entropy_with_logits(logits, targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if progress is not None:
                progress(name, done, steps)
    return net.eval()


@torch.no_grad()
def accuracy_fp32(net: CloudNet, x: torch.Tensor, keep: torch.Tensor) -> float:
    """Keep/discard accuracy of the float model."""
    pred = torch.cat([net(x[i : i + 256])[:, 0] >= 0 for i in range(0, x.shape[0], 256)])
    return float((pred == keep).float().mean())


def build_artifacts(
    out_dir: str | Path,
    seed: int = 0,
    *,
    config: TrainConfig | None = None,
    archs: Sequence[str] = tuple(ARCHS),
    progress: Progress | None = None,
) -> TrainResult:
    """Generate data, train, quantize and write ``<arch>.gnm`` and ``<arch>.fp32.npy``.

    Runs on one thread so the bytes do not depend on the machine's core count.
    """
    cfg = config or TrainConfig()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create output directory {out}: {e.strerror}") from None
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xs, cf, keep = _dataset(cfg.n_train, seed, progress)
        x = torch.from_numpy(xs)
        calib = x[: cfg.n_calib]
        files: list[Path] = []
        digests: dict[str, str] = {}
        for name in archs:
            net = train_net(
                name,
                x,
                torch.from_numpy(cf),
                torch.from_numpy(keep),
                seed=seed,
                config=cfg,
                progress=progress,
            )
            meta = {
                "train": {
                    "seed": seed,
                    "tiles": cfg.n_train,
                    "epochs": cfg.epochs[name],
                    "batch": cfg.batch,
                    "lr": cfg.lr,
                    "torch": torch.__version__,
                },
                "holdout_seed": HOLDOUT_SEED,
            }
            blob = export(net, calib, meta)
            gnm_path = out / f"{name}.gnm"
            npy_path = out / f"{name}.fp32.npy"
            gnm_path.write_bytes(blob)
            buf = io.BytesIO()
            np.save(buf, net.flat_parameters(), allow_pickle=False)
            npy_path.write_bytes(buf.getvalue())
            files += [gnm_path, npy_path]
            digests[gnm_path.name] = hashlib.sha256(blob).hexdigest()
            log.info("wrote %s (%d bytes)", gnm_path, len(blob))
    finally:
        torch.set_num_threads(threads)
    return TrainResult(files=tuple(files), sha256=digests, seconds=time.perf_counter() - t0)


def _dataset(
    n: int, seed: int, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if progress is None:
        return synth.make_dataset(n, seed)
    xs = np.empty((n, 4, synth.TILE_PX, synth.TILE_PX), dtype=np.float32)
    cf = np.empty(n, dtype=np.float32)
    keep = np.empty(n, dtype=bool)
    for i in range(n):
        t = synth.make_tile(synth.tile_seed(seed, i))
        xs[i], cf[i], keep[i] = t.pixels, t.cloud_fraction, t.keep
        if i % 256 == 0 or i == n - 1:
            progress("data", i + 1, n)
    return xs, cf, keep


#: The float32 references of the shipped artifacts (the lab's own data; the ``.gnm`` files
#: that fly are package data of ``fsw.ai``, see :func:`fsw.ai.shipped_dir`).
REFERENCE_DIR = Path(__file__).resolve().parent / "artifacts"


def fp32_reference_path(name: str, artifact: str | Path | None = None) -> Path:
    """Where the fp32 reference of ``name`` is: next to ``artifact`` if one is there, else
    in :data:`REFERENCE_DIR`.

    >>> fp32_reference_path("cloudnet-s").name
    'cloudnet-s.fp32.npy'
    """
    if artifact is not None:
        beside = Path(artifact).with_name(f"{name}.fp32.npy")
        if beside.exists():
            return beside
    return REFERENCE_DIR / f"{name}.fp32.npy"


def load_fp32(name: str, path: str | Path) -> CloudNet:
    """The float32 reference model saved next to the artifact (``<arch>.fp32.npy``)."""
    try:
        flat = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read fp32 reference {path}: {e}") from None
    net = CloudNet(arch(name))
    net.load_flat_parameters(flat)
    return net.eval()
