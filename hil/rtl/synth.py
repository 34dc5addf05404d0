"""Synthesis check and resource estimate of the Verilog blocks with Yosys (optional tool).

Proves the blocks map to real FPGA primitives (block RAMs, LUTs, flip-flops) and gives
the figures quoted in docs/rtl.md::

    res = synthesize("scrub_soc", "xilinx", workdir=Path("/tmp/synth"))
    res.luts, res.ffs, res.brams, res.dsps      # about 700, 530, 17, 1 for 64 KiB

Yosys is not needed for the cocotb tests; without it :func:`yosys_missing_reason` says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hil.rtl.errors import SimulationError
from hil.rtl.runner import HDL_DIR

#: Yosys synthesis script per FPGA family.
TARGETS: Mapping[str, str] = {
    "xilinx": "synth_xilinx -flatten",
    "ecp5": "synth_ecp5",
    "ice40": "synth_ice40",
}


@dataclass(slots=True, frozen=True)
class Block:
    """A synthesizable top level, its sources and its parameters."""

    top: str
    sources: tuple[str, ...]
    parameters: tuple[tuple[str, int], ...] = ()


BLOCKS: Mapping[str, Block] = {
    "scrub_soc": Block(
        "gnomon_scrub_soc",
        ("crc_engine.v", "dpram.v", "scrubber.v", "scrub_soc.v"),
        (("ARENA_AW", 16), ("TABLE_AW", 8)),
    ),
    "bch_decoder": Block("gnomon_bch_decoder", ("crc_engine.v", "bch_decoder.v")),
    "crc16": Block("gnomon_crc16_ccitt", ("crc_engine.v",)),
    "crc32c": Block("gnomon_crc32c", ("crc_engine.v",)),
}

_GROUPS = {
    "luts": ("LUT", "SB_LUT4"),
    "ffs": ("FD", "SB_DFF", "TRELLIS_FF"),
    "brams": ("RAMB", "SB_RAM", "DP16KD", "PDPW16KD"),
    "dsps": ("DSP48", "MULT18", "SB_MAC16"),
}


@dataclass(slots=True, frozen=True)
class Resources:
    """Cells of one synthesized block, by primitive type."""

    block: str
    target: str
    cells: Mapping[str, int] = field(default_factory=dict)

    def _count(self, group: str) -> int:
        prefixes = _GROUPS[group]
        return sum(n for cell, n in self.cells.items() if cell.startswith(prefixes))

    @property
    def luts(self) -> int:
        """Look-up tables of any size."""
        return self._count("luts")

    @property
    def ffs(self) -> int:
        """Flip-flops."""
        return self._count("ffs")

    @property
    def brams(self) -> int:
        """Block RAM primitives (RAMB36/RAMB18, EBR, DP16KD)."""
        return self._count("brams")

    @property
    def dsps(self) -> int:
        """Multiplier/DSP slices."""
        return self._count("dsps")

    def summary(self) -> dict[str, int | str]:
        """The grouped figures, JSON-able."""
        return {
            "block": self.block,
            "target": self.target,
            "luts": self.luts,
            "ffs": self.ffs,
            "brams": self.brams,
            "dsps": self.dsps,
        }


def yosys_missing_reason() -> str | None:
    """Why synthesis cannot run here (None when yosys is installed)."""
    if shutil.which("yosys") is None:
        return "yosys not found: `apt-get install yosys` for the synthesis check"
    return None


def synthesize(block: str, target: str = "xilinx", *, workdir: Path) -> Resources:
    """Synthesize ``block`` for ``target`` with Yosys; raises SimulationError on failure."""
    spec = BLOCKS.get(block)
    if spec is None:
        raise SimulationError(f"no RTL block {block!r}; known: {', '.join(sorted(BLOCKS))}")
    script = TARGETS.get(target)
    if script is None:
        raise SimulationError(f"no synthesis target {target!r}; known: {', '.join(TARGETS)}")
    reason = yosys_missing_reason()
    if reason is not None:
        raise SimulationError(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    stats = workdir / f"{block}.{target}.json"
    log = workdir / f"{block}.{target}.log"
    sources = " ".join(str(HDL_DIR / s) for s in spec.sources)
    params = " ".join(f"-set {name} {value}" for name, value in spec.parameters)
    commands = [f"read_verilog -defer {sources}"]
    if params:
        commands.append(f"chparam {params} {spec.top}")
    commands += [f"{script} -top {spec.top}", "check -assert", f"tee -q -o {stats} stat -json"]
    done = subprocess.run(
        ["yosys", "-q", "-l", str(log), "-p", "; ".join(commands)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not stats.is_file():
        raise SimulationError(f"yosys could not synthesize {block} for {target}: see {log}")
    try:
        design = json.loads(stats.read_text(encoding="utf-8"))["design"]
        cells = {str(k): int(v) for k, v in design["num_cells_by_type"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise SimulationError(f"unreadable yosys statistics in {stats}: {exc}") from None
    return Resources(block, target, cells)
