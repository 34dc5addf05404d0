"""`gnomon world pass-times` as an operator reads it in an 80-column terminal."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from hil.sim.cli import world_app

runner = CliRunner()


def test_pass_times_fit_80_columns_with_whole_times() -> None:
    result = runner.invoke(world_app, ["pass-times", "leo550-sso-6u"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout  # nothing truncated
    assert "leo550-sso-6u: ground-station passes, 2026-11-21 UTC" in result.stdout
    assert re.search(r"│ svalbard │ 06:22:22 │ 06:28:11 +│ +5\.8 min │ +9\.7° │", result.stdout)
    # the last pass is cut by the end of the span: listed whole (its real LOS and maximum
    # elevation, not the span's end), marked, and the mark explained
    assert re.search(r"│ svalbard │ 11:07:46 │ 11:17:37\+ │ +9\.9 min │ +70\.3° │", result.stdout)
    assert "+ still going on when the span ends" in result.stdout


def test_pass_times_over_two_days_show_the_date_in_a_column() -> None:
    result = runner.invoke(
        world_app, ["pass-times", "leo550-sso-6u", "--hours", "24"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "2026-11-21 to 2026-11-22 UTC" in result.stdout
    assert re.search(r"│ 2026-11-22 │ \w+ +│ \d\d:\d\d:\d\d │", result.stdout)


def test_pass_times_with_nothing_in_the_span_says_so() -> None:
    result = runner.invoke(world_app, ["pass-times", "leo550-sso-6u", "--hours", "0.2"])
    assert result.exit_code == 0
    assert "leo550-sso-6u: no eclipses in 0.2 h from 2026-11-21T06:22:00Z" in result.stdout


def test_sched_eval_table_fits_80_columns_with_whole_policy_names() -> None:
    import pytest

    pytest.importorskip("highspy")
    from hil.eval.sched.cli import sched_app

    result = runner.invoke(sched_app, ["eval", "--scenarios", "2"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "…" not in result.stdout and "sunlit_only" in result.stdout
    assert re.search(r"^goal >= 95% of oracle, .* s\)$", result.stdout, re.M)  # one line
