"""``gnomon model ...`` and ``gnomon seu ...``: model artifacts and SEU campaigns.

Heavy imports (torch, the runtime) happen inside the commands so ``gnomon --help`` is fast.
Exit codes: 0 success, 1 integrity failure (``verify``) or failed campaign goal,
2 bad input (unreadable file, bad option).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gnomon.clikit import emit_json, examples, fail

model_app = typer.Typer(
    help="Train, verify, inspect and sign .gnm model artifacts.", no_args_is_help=True
)
seu_app = typer.Typer(help="Single-event-upset fault-injection campaigns.", no_args_is_help=True)


@seu_app.callback()
def _seu_group() -> None:
    """Single-event-upset fault-injection campaigns (``gnomon seu campaign ...``).

    A callback keeps ``seu`` a group with one command, as the docs write it; without it
    typer folds the lone command into ``gnomon seu --model ...``.
    """


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
#: New artifacts go here; shipping one means copying its ``.gnm`` into ``fsw/ai/artifacts/``
#: and its ``.fp32.npy`` into ``models/artifacts/`` (docs/model-format.md).
DEFAULT_OUT = Path("out/models")

# soft_wrap: a message is one line however narrow the terminal or log (tables still fit)
_err = Console(stderr=True, soft_wrap=True)
_out = Console(soft_wrap=True)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr; yields a (stage, done, total) callback."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description:>12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_err,
        transient=False,
    ) as prog:

        def cb(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = prog.add_task(stage, total=total)
            prog.update(bars[stage], completed=done, total=total)

        yield cb


def _read_key(key_file: Path | None) -> bytes | None:
    if key_file is None:
        return None
    try:
        key = key_file.read_bytes().strip()
    except OSError as e:
        fail(f"cannot read key file {key_file}: {e.strerror}")
    if len(key) < 16:
        fail(f"key file {key_file} holds {len(key)} bytes; an HMAC key needs at least 16")
    return key


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


@model_app.command("train", epilog=examples("gnomon model train --quick --out /tmp/models"))
def train_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the artifacts.")] = DEFAULT_OUT,
    seed: Annotated[int, typer.Option(help="Seed for data, initialisation and batch order.")] = 0,
    quick: Annotated[bool, typer.Option(help="Tiny config: a smoke test, not flight.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Generate synthetic tiles, train both CloudNets, quantize to int8 and export .gnm."""
    from models.errors import ModelError
    from models.train import TrainConfig, build_artifacts

    if seed < 0:
        fail(f"seed must be >= 0, got {seed}")
    cfg = (
        TrainConfig(n_train=256, n_calib=64, epochs={"cloudnet-s": 1, "cloudnet-l": 1})
        if quick
        else TrainConfig()
    )
    try:
        with _progress(True) as cb:
            res = build_artifacts(out, seed, config=cfg, progress=cb)
    except ModelError as e:
        fail(str(e))
    summary = {
        "files": [str(p) for p in res.files],
        "sha256": dict(res.sha256),
        "seconds": round(res.seconds, 1),
        "seed": seed,
        "quick": quick,
    }
    if json_out:
        emit_json(summary, indent=2)
    else:
        for p in res.files:
            _out.print(f"wrote {p}")
        for name, digest in res.sha256.items():
            _out.print(f"sha256 {name} {digest}")


@model_app.command(
    "build",
    epilog=examples("gnomon model build minilm", "gnomon model build minilm --out /tmp/models"),
)
def build_cmd(
    name: Annotated[str, typer.Argument(help="The model to build: minilm.")],
    out: Annotated[Path, typer.Option(help="Directory for the artifact.")] = DEFAULT_OUT,
    json_out: JsonFlag = False,
) -> None:
    """Build a pretrained model's int8 .gnm from an installed package (deterministic bytes)."""
    import hashlib
    import time

    from models.errors import ModelError

    if name != "minilm":
        fail(f"unknown model {name!r}: 'minilm' (all-MiniLM-L6-v2) is the one to build")
    from models.minilm import build

    t0 = time.perf_counter()
    try:
        path = build(out)
    except ModelError as e:
        fail(str(e))
    data = path.read_bytes()
    from fsw.ai import gnm

    h = gnm.Header.decode(data)
    info = {
        "file": str(path),
        "bytes": len(data),
        "arena_bytes": h.arena_size,
        "blocks": h.n_blocks,
        "sha256": hashlib.sha256(data).hexdigest(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if json_out:
        emit_json(info, indent=2)
    else:
        _out.print(
            f"wrote {path} ({info['bytes']} bytes, arena {h.arena_size} bytes in "
            f"{h.n_blocks} blocks)\nsha256 {info['sha256']}"
        )


@model_app.command(
    "verify",
    epilog=examples(
        "gnomon model verify fsw/ai/artifacts/cloudnet-s.gnm",
        "gnomon model verify signed.gnm --key-file key.bin --json",
    ),
)
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="The .gnm file to check.")],
    key_file: Annotated[Path | None, typer.Option(help="HMAC key; require a signature.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check every byte of a model file; exit 1 naming the damaged region and block.

    A signed file's signature is only checked with ``--key-file``; without one the output
    says it went unchecked (``signature``: ``valid``, ``unchecked`` or ``none``)."""
    from fsw.ai import ModelIntegrityError, gnm

    data = _read_file(file)
    problems = gnm.verify(data, hmac_key=_read_key(key_file))
    try:
        signed = gnm.Header.decode(data).signed
    except ModelIntegrityError:
        signed = False  # a damaged header is already among the problems
    signature = "valid" if key_file else ("unchecked" if signed else "none")
    if json_out:
        emit_json(
            {
                "file": str(file),
                "ok": not problems,
                "signed": signed,
                "signature": signature,
                "problems": [
                    {"region": p.region, "block": p.block, "offset": p.offset, "message": p.message}
                    for p in problems
                ],
            },
            indent=2,
        )
    elif problems:
        for p in problems:
            where = f"block {p.block}" if p.block is not None else p.region
            text = p.message if p.message.startswith(where) else f"{where}: {p.message}"
            _err.print(Text("FAIL", style="bold red") + Text(f" {file}: {text}"))
    else:
        _out.print(
            f"OK {file}: header, graph, both CRC tables, every block and SHA-256 verify"
            + {
                "valid": " (signature valid)",
                "unchecked": "; the file is SIGNED but its signature was NOT checked "
                "(give --key-file to check it)",
                "none": " (unsigned)",
            }[signature]
        )
    if problems:
        raise typer.Exit(1)


@model_app.command(
    "inspect", epilog=examples("gnomon model inspect fsw/ai/artifacts/cloudnet-s.gnm")
)
def inspect_cmd(
    file: Annotated[Path, typer.Argument(help="The .gnm file to describe.")],
    json_out: JsonFlag = False,
) -> None:
    """Show the header, ops, tensors (sizes, blocks), block checksums and metadata."""
    from fsw.ai import ModelIntegrityError, gnm

    data = _read_file(file)
    try:
        m = gnm.decode(data)
    except ModelIntegrityError as e:
        fail(f"{file} does not verify ({e}); run 'gnomon model verify' for details", 1)
    h = m.header
    bs = h.block_size
    tensors = [
        {
            **t.to_json(),
            "shape": list(t.shape),
            "blocks": [t.offset // bs, (t.offset + t.nbytes - 1) // bs],
        }
        for t in m.graph.tensors
    ]
    crcs = [f"{int(c):#010x}" for c in m.crc_table]
    info = {
        "file": str(file),
        "name": m.graph.name,
        "version": f"{h.version_major}.{h.version_minor}",
        "file_bytes": len(data),
        "signed": h.signed,
        "sha256": m.sha256.hex(),
        "arena_offset": h.arena_offset,
        "arena_bytes": h.arena_size,
        "block_size": bs,
        "blocks": h.n_blocks,
        "block_crc32c": crcs,
        "input_shape": list(m.graph.input_shape),
        "outputs": list(m.graph.output_labels),
        "ops": [op.to_json() for op in m.graph.ops],
        "tensors": tensors,
        "meta": dict(m.graph.meta),
    }
    if json_out:
        emit_json(info, indent=2)
        return
    _out.print(
        f"[bold]{m.graph.name}[/]  {file}  format {info['version']}  "
        f"{len(data)} bytes  {'signed' if h.signed else 'unsigned'}"
    )
    _out.print(f"sha256 {info['sha256']}")
    _out.print(
        f"arena {h.arena_size} bytes at offset {h.arena_offset}, {h.n_blocks} blocks of {bs} bytes"
    )
    ops = Table("op", "kind", "input -> output", "attrs", title="ops")
    for op in m.graph.ops:
        ops.add_row(
            op.name,
            op.kind,
            f"{op.input} -> {op.output}",
            json.dumps(dict(op.attrs), sort_keys=True),
        )
    _out.print(ops)
    tt = Table("tensor", "dtype", "shape", "offset", "bytes", "blocks", title="tensors")
    for t in tensors:
        tt.add_row(
            t["name"],
            t["dtype"],
            "x".join(map(str, t["shape"])),
            str(t["offset"]),
            str(t["nbytes"]),
            "{}..{}".format(*t["blocks"]),
        )
    _out.print(tt)
    ct = Table("block", "arena bytes", "CRC-32C", title="block checksums")
    for i, c in enumerate(crcs):
        ct.add_row(str(i), f"{i * bs}..{min((i + 1) * bs, h.arena_size) - 1}", c)
    _out.print(ct)
    meta = dict(m.graph.meta)
    meta.pop("calibration", None)
    _out.print(f"meta {json.dumps(meta, sort_keys=True)}")


@model_app.command(
    "sign", epilog=examples("gnomon model sign cloudnet-s.gnm --key-file key.bin --out signed.gnm")
)
def sign_cmd(
    file: Annotated[Path, typer.Argument(help="The verified .gnm file to sign.")],
    key_file: Annotated[Path, typer.Option(help="File holding the HMAC key (>= 16 bytes).")],
    out: Annotated[Path, typer.Option(help="Where to write the signed file.")],
) -> None:
    """Re-emit a model with an HMAC-SHA256 signature, for uplink."""
    from fsw.ai import ModelIntegrityError, gnm

    key = _read_key(key_file)
    try:
        m = gnm.decode(_read_file(file))
    except ModelIntegrityError as e:
        fail(f"{file} does not verify ({e}); refusing to sign it", 1)
    blob = gnm.encode(m.graph, bytes(m.arena), hmac_key=key, block_size=m.header.block_size)
    try:
        out.write_bytes(blob)
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror}")
    _out.print(f"wrote {out} ({len(blob)} bytes, signed)")


@seu_app.command(
    "campaign",
    epilog=examples(
        "gnomon seu campaign --model fsw/ai/artifacts/cloudnet-s.gnm --flips 50",
        "gnomon seu campaign --model fsw/ai/artifacts/cloudnet-l.gnm --mode burst",
        "gnomon seu campaign --model out/models/minilm-l6.gnm --flips 200 --retrieval-flips 200",
    ),
)
def campaign_cmd(
    model: Annotated[Path, typer.Option(help="The .gnm model to attack.")],
    flips: Annotated[int, typer.Option(help="Number of upset events to inject.")] = 1000,
    mode: Annotated[str, typer.Option(help="single | double | burst")] = "single",
    target: Annotated[str, typer.Option(help="any | msb | sign | exponent")] = "any",
    burst_bits: Annotated[int, typer.Option(help="Bits per burst (mode burst).")] = 4,
    seed: Annotated[int, typer.Option(help="Injection seed.")] = 0,
    eval_tiles: Annotated[int, typer.Option(help="Held-out tiles for accuracy.")] = 512,
    retrieval_flips: Annotated[
        int,
        typer.Option(
            help="Text encoders: unrepaired 1-bit flips whose effect on top-1 retrieval "
            "is measured, int8 vs float32."
        ),
    ] = 0,
    json_out: JsonFlag = False,
) -> None:
    """Inject upsets, scrub, and prove detection, repair and bit-identical outputs."""
    from fsw.ai import AiError
    from fsw.ai.faults import MODES, TARGETS
    from models.campaign import CampaignConfig, run_campaign
    from models.errors import ModelError

    if mode not in MODES:
        fail(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if target not in TARGETS:
        fail(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if flips < 0 or eval_tiles < 1 or seed < 0 or retrieval_flips < 0:
        fail("--flips, --retrieval-flips and --seed must be >= 0 and --eval-tiles >= 1")
    cfg = CampaignConfig(
        flips=flips,
        mode=mode,
        target=target,
        burst_bits=burst_bits,
        seed=seed,
        eval_tiles=eval_tiles,
        retrieval_flips=retrieval_flips,
    )
    try:
        with _progress(True) as cb:
            rep = run_campaign(model, cfg, progress=cb)
    except (AiError, ModelError) as e:
        fail(str(e))
    ok = (
        rep["detected_pct"] == 100.0
        and rep["repaired_pct"] == 100.0
        and rep["outputs_identical_after_repair"]
    )
    if json_out:
        emit_json(rep, indent=2)
    else:
        for line in campaign_lines(rep):
            _out.print(line)
        if "retrieval_damage" in rep:
            d = rep["retrieval_damage"]
            _out.print(
                f"unrepaired single flips changing a top-1 retrieval: int8 "
                f"{d['int8_flips_changing_top1']}/{d['flips']}, float32 "
                f"{d['fp32_flips_changing_top1']}/{d['flips']}"
            )
        if "ber" not in rep:
            raise typer.Exit(0 if ok else 1)
        _out.print(campaign_table(rep))
        for r in rep["activation_faults"]:
            _out.print(
                f"activation upsets at {r['rate']:.0e} per value: accuracy "
                f"{r['accuracy_clipped']:.4f} with clipping, "
                f"{r['accuracy_unclipped']:.4f} without"
            )
    if not ok:
        raise typer.Exit(1)


def campaign_lines(rep: dict[str, Any]) -> list[Text]:
    """The verdict of a campaign report in words (PASS/FAIL first)."""
    ok = (
        rep["detected_pct"] == 100.0
        and rep["repaired_pct"] == 100.0
        and rep["outputs_identical_after_repair"]
    )
    n = rep["flips_injected"]
    verdict = Text("PASS" if ok else "FAIL", style="bold green" if ok else "bold red")
    same = "bit-identical" if rep["outputs_identical_after_repair"] else "NOT identical"
    return [
        verdict
        + Text(
            f" {rep['model']}: {n} {rep['mode']} upsets ({rep['bits_flipped']} "
            f"bits) in the {rep['arena_bytes']}-byte weight arena: "
            f"{rep['detected_pct']:g} % detected, {rep['repaired_pct']:g} % "
            f"repaired; outputs {same} after repair"
        ),
        Text(
            f"{rep['events_changing_output_before_repair']} of the {n} upsets changed an "
            "output before the scrubber caught them"
        ),
    ]


def campaign_table(rep: dict[str, Any]) -> Table:
    """Accuracy under random bit errors, with and without the scrubber."""
    fp32 = rep.get("fp32_accuracy")
    t = Table(
        "BER",
        "bits",
        "unprotected",
        "scrubbed",
        "fp32 unprot.",
        title=f"accuracy on {rep['eval_tiles']} held-out tiles",
        caption="bits: mean flipped in the int8 arena",
    )
    golden = f"{rep['golden_accuracy']:.4f}"
    t.add_row("0", "0", golden, golden, "-" if fp32 is None else f"{fp32:.4f}")
    for r in rep["ber"]:
        fp = r.get("accuracy_fp32_unprotected")
        t.add_row(
            f"{r['ber']:.0e}",
            f"{r['bits_flipped_mean']:.1f}",
            f"{r['accuracy_unprotected']:.4f}",
            f"{r['accuracy_protected']:.4f}",
            "-" if fp is None else f"{fp:.4f}",
        )
    return t
