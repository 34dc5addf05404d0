"""`gnomon`: one command for the flight software, the ground, the bench and the models.

Each package owns its subcommands; this module only mounts them. The flight's own
(`gnomon dict`, `gnomon fsw`) need nothing beyond the base install and are mounted
directly. The others are mounted lazily: `gnomon --help` lists them from
:data:`MOUNTS` without importing them, and a command is imported only when it runs,
after checking that the pip extra it needs is installed. So a flight board with the
base install alone runs `gnomon fsw ...`, and `gnomon ground ...` there says which
extra to install (docs/packaging.md).

>>> from typer.testing import CliRunner
>>> help_text = CliRunner().invoke(app, ["--help"]).output
>>> all(name in help_text for name in ("dict", "fsw", "ground", "sitl", "bench"))
True
>>> MOUNTS["ground"].extra, EXTRA_MODULES["ground"]
('ground', ('rich', 'prompt_toolkit'))
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from fsw.cli import dict_app, fsw_app
from gnomon.clikit import EXIT_USAGE, fail_needs_extra, missing_third_party
from gnomon.dev import dev_app
from gnomon.docgen import DICT_DOCS_EXAMPLES, dict_docs

#: The third-party modules each pip extra brings (its `pyproject.toml` distributions, by
#: import name); a test keeps the two in step.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "ground": ("rich", "prompt_toolkit"),
    "sim": ("matplotlib", "rich", "highspy"),
    "bench": ("matplotlib", "rich", "highspy", "cocotb", "spacepackets"),
    "lab": ("rich",),
    "campaign": ("matplotlib", "rich", "highspy", "dask", "distributed"),
}


@dataclass(frozen=True, slots=True)
class Mount:
    """A subcommand imported only when it runs: ``module.attr`` is a Typer app or a
    command function; ``extra`` is the pip extra it needs (None: the base install)."""

    module: str
    attr: str
    help: str
    extra: str | None = None
    #: For a command function: the module attribute holding its help epilog (examples).
    epilog: str | None = None


MOUNTS: dict[str, Mount] = {
    "sitl": Mount(
        "hil.sim.cli", "sitl_command", "Fly a simulated mission (SITL).", "sim", "SITL_EXAMPLES"
    ),
    "ground": Mount(
        "ground.cli", "ground_app", "Ground segment: console, commands, archive.", "ground"
    ),
    "hil": Mount(
        "hil.bench.cli", "hil_app", "Hardware-in-the-loop bench over a serial cable.", "bench"
    ),
    "model": Mount(
        "models.cli", "model_app", "Train, verify, inspect .gnm model artifacts.", "lab"
    ),
    "seu": Mount("models.cli", "seu_app", "Radiation fault-injection campaigns on a model.", "lab"),
    "world": Mount("hil.sim.cli", "world_app", "The simulated world: eclipses and passes.", "sim"),
    "sched": Mount(
        "hil.eval.sched.cli", "sched_app", "Evaluate power-aware inference scheduling.", "sim"
    ),
    "campaign": Mount(
        "hil.eval.campaign.cli",
        "campaign_app",
        "Monte Carlo campaigns and constellations on Dask.",
        "campaign",
    ),
    "bench": Mount("benchmarks.cli", "bench_app", "Benchmarks: each prints one JSON object."),
    "yamcs": Mount("ground.yamcs.cli", "yamcs_app", "Fly from Yamcs: its configuration, a run."),
}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The ones of ``modules`` that cannot be imported here (without importing them).

    >>> missing_modules(("json", "no_such_module_here"))
    ['no_such_module_here']
    """
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def load(name: str) -> Any:
    """The click command behind ``gnomon <name>``; fails with the extra to install when
    the one it needs is missing."""
    mount = MOUNTS[name]
    if mount.extra is not None and missing_modules(EXTRA_MODULES[mount.extra]):
        fail_needs_extra(name, mount.extra)
    try:
        module = importlib.import_module(mount.module)
        target = getattr(module, mount.attr)
    except ModuleNotFoundError as exc:
        missing = missing_third_party(exc)
        if mount.extra is None or missing is None:
            raise
        fail_needs_extra(name, mount.extra, missing)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(add_completion=False)
        epilog = getattr(module, mount.epilog) if mount.epilog else None
        single.command(name, epilog=epilog)(target)
        command = typer.main.get_command(single)
    command.name = name
    # a mounted app offers no shell completion of its own (the sub-apps default to it)
    command.params = [
        p for p in command.params if p.name not in ("install_completion", "show_completion")
    ]
    return command


class _Lazy(TyperGroup):
    """What ``gnomon --help`` lists for a lazy mount; running it loads the real command."""

    def __init__(self, name: str, mount: Mount) -> None:
        super().__init__(name=name, help=mount.help)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        assert self.name is not None
        return load(self.name).make_context(info_name, args, parent=parent, **extra)


class _Gnomon(TyperGroup):
    """The ``gnomon`` group: its own commands first, then the lazy mounts."""

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *(name for name in MOUNTS if name not in own)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in MOUNTS:
            return _Lazy(cmd_name, MOUNTS[cmd_name])
        return command


app = typer.Typer(
    name="gnomon",
    help="Gnomon: flight software for edge-AI satellites (SITL, HIL, ground, models).",
    cls=_Gnomon,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version_text() -> str:
    """What ``gnomon --version`` prints: the package's version and the dictionary's.

    >>> version_text().startswith("gnomon ")
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    from fsw.core.idlock import DICTIONARY_VERSION

    try:
        package = version("gnomon")
    except PackageNotFoundError:  # running from a source tree that was never installed
        package = "(not installed)"
    return f"gnomon {package} (dictionary version {DICTIONARY_VERSION})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


def xtce_format(doc: dict[str, Any]) -> tuple[str, str]:
    """``gnomon dict export --format xtce``: the XTCE text and a one-line summary."""
    from ground.dictionary import Dictionary
    from ground.yamcs.xtce import to_xtce

    out = to_xtce(Dictionary(doc))
    return out.xml, out.summary()


@app.callback()
def _gnomon(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print Gnomon's version and exit.",
    ),
) -> None:
    """Gnomon: flight software for edge-AI satellites (SITL, HIL, ground, models)."""
    ctx.obj = {"dict_formats": {"xtce": xtce_format}}


dict_app.command("docs", epilog=DICT_DOCS_EXAMPLES)(dict_docs)
app.add_typer(dict_app, name="dict", help="The flight dictionary (commands, telemetry, events).")
app.add_typer(fsw_app, name="fsw", help="Run the flight software (simulated or on a board).")
app.add_typer(dev_app, name="dev", help="Developer checks (requirement traceability).")


def main() -> None:
    """Console-script entry point.

    A command that still meets a missing third-party module (one no extra check caught)
    ends with a sentence, not a traceback.
    """
    try:
        app()
    except ModuleNotFoundError as exc:
        missing = missing_third_party(exc)
        if missing is None:
            raise
        typer.echo(
            f"error: this command needs {missing}, which is not installed here: install the "
            "extra that brings it (docs/packaging.md) or pip install " + missing,
            err=True,
        )
        raise SystemExit(EXIT_USAGE) from None


if __name__ == "__main__":
    main()
