"""The two cloud-screening CNNs of the cascade, in float32 for training.

``cloudnet-s`` is cheap enough to run on every frame; ``cloudnet-l`` is larger and more
accurate, and runs when the small one is unsure. Both map a (N, 4, 64, 64) reflectance
tile to two logits: ``keep`` (P(keep) = sigmoid) and ``cloud`` (cloud fraction = sigmoid).

>>> net = CloudNet(ARCHS["cloudnet-s"])
>>> net(torch.zeros(3, 4, 64, 64)).shape
torch.Size([3, 2])
>>> ARCHS["cloudnet-s"].macs_per_tile()
2031680
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.errors import ModelError

OUTPUT_LABELS = ("keep", "cloud")


@dataclass(slots=True, frozen=True)
class ConvSpec:
    """One conv + ReLU layer."""

    out_channels: int
    kernel: int
    stride: int
    padding: int


@dataclass(slots=True, frozen=True)
class ArchSpec:
    """A CloudNet variant: conv+ReLU layers, global average pool, linear head."""

    name: str
    convs: tuple[ConvSpec, ...]
    in_channels: int = 4
    tile_px: int = 64
    outputs: int = 2

    def macs_per_tile(self) -> int:
        """Multiply-accumulates of one 64x64 tile."""
        c, hw, total = self.in_channels, self.tile_px, 0
        for cs in self.convs:
            hw = (hw + 2 * cs.padding - cs.kernel) // cs.stride + 1
            total += hw * hw * c * cs.kernel * cs.kernel * cs.out_channels
            c = cs.out_channels
        return total + c * self.outputs


ARCHS: dict[str, ArchSpec] = {
    "cloudnet-s": ArchSpec(
        "cloudnet-s",
        (ConvSpec(16, 4, 4, 0), ConvSpec(32, 3, 1, 1), ConvSpec(32, 3, 2, 1)),
    ),
    "cloudnet-l": ArchSpec(
        "cloudnet-l",
        (
            ConvSpec(24, 2, 2, 0),
            ConvSpec(48, 3, 2, 1),
            ConvSpec(48, 3, 1, 1),
            ConvSpec(64, 3, 2, 1),
            ConvSpec(64, 3, 1, 1),
        ),
    ),
}


def arch(name: str) -> ArchSpec:
    """The architecture called ``name`` (``cloudnet-s`` or ``cloudnet-l``)."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(ARCHS)}") from None


class CloudNet(nn.Module):
    """Float32 CloudNet: the training form, and the fp32 eager baseline of the benches."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        layers = []
        c = spec.in_channels
        for cs in spec.convs:
            layers.append(nn.Conv2d(c, cs.out_channels, cs.kernel, cs.stride, cs.padding))
            c = cs.out_channels
        self.convs = nn.ModuleList(layers)
        self.head = nn.Linear(c, spec.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x.mean(dim=(2, 3)))

    def flat_parameters(self) -> np.ndarray:
        """All parameters as one float32 vector, in ``state_dict`` order."""
        parts = [
            p.detach().cpu().numpy().astype(np.float32).ravel() for p in self.state_dict().values()
        ]
        return np.concatenate(parts)

    def load_flat_parameters(self, flat: np.ndarray) -> None:
        """Inverse of :meth:`flat_parameters`."""
        sd = self.state_dict()
        need = sum(p.numel() for p in sd.values())
        if flat.ndim != 1 or flat.size != need or flat.dtype != np.float32:
            raise ModelError(
                f"{self.spec.name}: expected {need} float32 parameters, got {flat.size} "
                f"{flat.dtype}: the fp32 reference file belongs to another model"
            )
        out, pos = {}, 0
        for k, p in sd.items():
            out[k] = torch.from_numpy(flat[pos : pos + p.numel()].copy()).view(p.shape)
            pos += p.numel()
        self.load_state_dict(out)
