"""`gnomon`: one command for the flight software, the ground, the bench and the models.

Each package owns its subcommands; this module only mounts them, so that
`gnomon --help` stays fast (heavy imports happen inside the commands).

>>> from typer.testing import CliRunner
>>> "dict" in CliRunner().invoke(app, ["--help"]).output
True
"""

from __future__ import annotations

import typer

from benchmarks.cli import bench_app
from fsw.cli import dict_app, fsw_app
from gnomon.docgen import DICT_DOCS_EXAMPLES, dict_docs
from ground.cli import ground_app
from hil.bench.cli import hil_app
from hil.eval.sched.cli import sched_app
from hil.sim.cli import sitl_command, world_app
from models.cli import model_app, seu_app

app = typer.Typer(
    name="gnomon",
    help="Gnomon: flight software for edge-AI satellites (SITL, HIL, ground, models).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dict_app.command("docs", epilog=DICT_DOCS_EXAMPLES)(dict_docs)
app.add_typer(dict_app, name="dict", help="The flight dictionary (commands, telemetry, events).")
app.add_typer(fsw_app, name="fsw", help="Run the flight software (simulated or on a board).")
app.command("sitl")(sitl_command)
app.add_typer(ground_app, name="ground", help="Ground segment: console, commands, archive.")
app.add_typer(hil_app, name="hil", help="Hardware-in-the-loop bench over a serial cable.")
app.add_typer(model_app, name="model", help="Train, verify, inspect .gnm model artifacts.")
app.add_typer(seu_app, name="seu", help="Radiation fault-injection campaigns on a model.")
app.add_typer(world_app, name="world", help="The simulated world: eclipses and passes.")
app.add_typer(sched_app, name="sched", help="Evaluate power-aware inference scheduling.")

app.add_typer(bench_app, name="bench")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
