"""The console as a new operator meets it: typed through a pseudo-terminal (a dumb one and
a full one), as a script on stdin, and its completion and argument parsing."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from rich.console import Console as RichConsole
from test_ground_harness import CFG, FlightThread, flight_dictionary, free_udp_port

from fsw.ccsds import TEST_KEY_FILE
from fsw.link import memory_pair
from ground import Dictionary, GroundError
from ground.console import (
    Console,
    DictionaryCompleter,
    channel_pattern,
    command_list_lines,
    parse_command_line,
    parse_value,
)
from ground.station import GroundStation

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """A program on a pseudo-terminal; `expect` reads until a pattern shows up."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.raw = ""
        self._pos = 0

    @property
    def text(self) -> str:
        """Everything shown so far, without escape sequences."""
        return ANSI.sub("", self.raw)

    def _read(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if ready:
            try:
                self.raw += os.read(self.fd, 65536).decode("utf-8", "replace")
            except OSError:  # the program ended
                time.sleep(timeout_s)

    def expect(self, pattern: str, timeout_s: float = 15.0) -> str:
        """Wait until ``pattern`` (a regex) appears after the previous match."""
        deadline = time.monotonic() + timeout_s
        while True:
            match = re.search(pattern, self.text[self._pos :])
            if match:
                self._pos += match.end()
                return match.group(0)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} not shown within {timeout_s} s; the screen "
                    f"said:\n{self.text[-3000:]}"
                )
            self._read(0.1)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def close(self) -> int:
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        os.close(self.fd)
        return code


@pytest.fixture(scope="module")
def flight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    dict_file = tmp_path_factory.mktemp("console") / "dictionary.json"
    dict_file.write_text(json.dumps(flight_dictionary()), encoding="utf-8")
    with FlightThread(url):
        yield url, dict_file


@pytest.mark.parametrize("term", ["dumb", "xterm-256color"])
def test_new_operator_session_through_a_pty(
    flight: tuple[str, Path], tmp_path: Path, term: str
) -> None:
    url, dict_file = flight
    history = tmp_path / "history"
    state = dict_file.parent / "arsn.json"
    carried_over = json.loads(state.read_text())["tc_seq"] if state.exists() else 0
    env = {
        **os.environ,
        "TERM": term,
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "COLUMNS": "140",
        "HOME": str(tmp_path),
    }
    term_ = Terminal(
        [
            sys.executable,
            "-m",
            "ground.cli",
            "console",
            "--link",
            url,
            "--dict",
            str(dict_file),
            "--key-file",
            str(TEST_KEY_FILE),
            "--history",
            str(history),
            # both runs fly the same spacecraft: the SDLS sequence must carry over
            "--arsn-file",
            str(dict_file.parent / "arsn.json"),
        ],
        env,
    )
    try:
        term_.expect(r"Type help")
        term_.expect(r"gnd>")
        term_.type("PNIG\r")  # a typo
        term_.expect(r"error: no command named 'PNIG'; did you mean PING\?")
        term_.type("SEQ_START seq_id=0\r")  # out of range: refused on the ground
        term_.expect(r"error: SEQ_START: seq_id 0 below min 1")
        term_.type("PING\r")
        # the second run carries on the first one's numbering (the same --arsn-file)
        n = int(term_.expect(r"PING #\d+ sent")[6:-5])
        assert n == carried_over
        term_.expect(rf"PING #{n} completed")
        term_.type("SEQ_START 77\r")  # positional argument; fails on board
        term_.expect(rf"SEQ_START #{n + 1} FAILED at completion: NOT_FOUND: no sequence with id 77")
        term_.type("set health.max_restarts=4\r")
        term_.expect(rf"PARAM_SET #{n + 2} completed")
        term_.type("get health.max_restarts\r")
        term_.expect(r"reply prm.VALUES: health.max_restarts = 4")
        if term != "dumb":
            term_.type("PI\t")  # Tab completes the command name
            term_.expect(r"PING")
            term_.type("\r")
            term_.expect(rf"PING #{n + 4} completed")
        term_.type("tlm mode.mode\r")
        term_.expect(r"mode\.mode\W+NOMINAL")
        term_.type("quit\r")
        assert term_.close() == 0
    finally:
        if term_.proc.poll() is None:
            term_.proc.kill()
    assert "PNIG" in history.read_text(encoding="utf-8")  # the history file keeps lines


def test_script_on_stdin_waits_for_its_commands_and_reports_failure() -> None:
    spacecraft_end, ground_end = memory_pair()
    out = io.StringIO()
    script = io.StringIO(
        "# a comment\nPING\nSEQ_START seq_id=77\nwait 1.5\ntlm exec.met\n"
        "events 5\ncmds\nstats fop\nhelp SEQ_START\nwatch mode.mode\nhelp\n"
        "tlm exec\ntlm nosuch.thing\nhelp PING\nhelp HK_ONE_SHOT\n"
    )
    with (
        FlightThread(spacecraft_end),
        GroundStation(flight_dictionary(), CFG, transport=ground_end) as station,
    ):
        console = Console(
            station,
            mode="lines",
            stdin=script,
            drain_s=5.0,
            out=RichConsole(file=out, width=140, color_system=None),
        )
        station.wait_for(lambda: station.in_contact, 5.0)
        code = console.run()
        toolbar = console.toolbar_text(80)
    text = out.getvalue()
    assert len(toolbar) <= 80 and "FOP ACTIVE" in toolbar and "pending" in toolbar
    assert code == 1  # the sequence does not exist: a script must see that
    assert "gnd> PING" in text and "PING #0 completed" in text
    assert "reply cmd.PONG\n" in text
    assert "SEQ_START #1 FAILED at completion: NOT_FOUND" in text
    # cmds: each command with the time it was sent (UTC) and how long its stages took
    assert re.search(r"\d\d:\d\d:\d\d +│ +PING +│ +completed +│ .*completed \(\d+\.\d s\)", text)
    assert "exec.met_s" in text and "fop_state" in text
    assert "seq_id" in text and "u16 1..65535" in text  # help shows the argument range
    assert "telemetry mode.mode (1)" in text  # watch prints once when not on a terminal
    # help: usages as typed (not eaten as markup), the command list wrapped between names
    assert "tlm [pattern]" in text and "events [n]" in text
    listing = text[text.index("spacecraft commands") :].splitlines()[1:4]
    assert all(line.startswith("  ") and line.rstrip().endswith(",") for line in listing)
    assert "telemetry exec (" in text  # a component's channels
    assert "no channel matches 'nosuch.thing'" in text
    assert "usage: SEQ_START seq_id=..." in text and "no arguments: send it as `PING`" in text
    # whose clock: event times are on board (TAI to UTC), command times the host's
    assert re.search(r"events \(last \d+, \d{4}-\d\d-\d\d UTC on board\)", text)
    assert "S/C time (UTC)" in text and "sent (host UTC)" in text
    assert re.search(r"\[S/C \d\d:\d\d:\d\d\] INFO", text)  # a live event line
    # help of a command with a list argument shows the element types ([...] is not markup)
    assert re.search(r"sids +│ list of \[sid: u16[^]]*\] \(<= \d+\)", text), text


def test_toolbar_does_not_say_limits_ok_before_any_telemetry() -> None:
    _, ground_end = memory_pair()  # nobody on the other end: no TM ever arrives
    with GroundStation(flight_dictionary(), CFG, transport=ground_end) as station:
        console = Console(
            station, mode="lines", stdin=io.StringIO(""), out=RichConsole(file=io.StringIO())
        )
        toolbar = console.toolbar_text(120)
    assert "no downlink yet" in toolbar and "limits: no TM yet" in toolbar
    assert "limits ok" not in toolbar


def test_tlm_component_names_and_command_list_wrapping() -> None:
    names = ["eps.soc_pct", "eps.solar_w", "scrubber.sweeps", "seq.steps_released"]
    assert channel_pattern("eps", names) == "eps.*"  # not scrubber.sweeps, seq.steps_...
    assert channel_pattern("eps.", names) == "eps.*"
    assert channel_pattern("soc", names) == "soc" and channel_pattern("e*", names) == "e*"
    lines = command_list_lines([f"COMMAND_{i}" for i in range(30)], 80)
    assert all(len(line) <= 78 for line in lines)
    assert all(line.rstrip(",").split(", ")[-1].startswith("COMMAND_") for line in lines)


def test_completion_offers_names_arguments_ranges_and_labels() -> None:
    completer = DictionaryCompleter(Dictionary(flight_dictionary()))

    def complete(text: str) -> dict[str, str]:
        return {
            c.text: c.display_meta_text
            for c in completer.get_completions(
                Document(text), CompleteEvent(completion_requested=True)
            )
        }

    assert "PING" in complete("PI") and "tlm" in complete("tl")
    seq = complete("SEQ_START ")
    assert seq == {"seq_id=": "u16 1..65535"}
    hk = complete("HK_CREATE sid=5 ")
    assert "sid=" not in hk and "interval_ms=" in hk and "ms" in hk["interval_ms="]
    assert "health.max_restarts=" in complete("set health.")
    assert "u8 0..100" in complete("set health.max")["health.max_restarts="]
    assert "mode.mode" in complete("tlm mo")
    assert complete("tlm mode.mo")["mode.mode"].startswith("one of NOMINAL")  # type shown
    assert "PING" in complete("at +10 PI")


def test_argument_parsing() -> None:
    assert parse_value("[1, 2]") == [1, 2] and parse_value("SAFE") == "SAFE"
    assert parse_value('{"a": 1}') == {"a": 1} and parse_value("2.5") == 2.5
    assert parse_command_line("HK_ONE_SHOT sids=1,2") == ("HK_ONE_SHOT", {"sids": (1, 2)})
    d = Dictionary(flight_dictionary())
    assert parse_command_line("SEQ_START 4", d.commands["SEQ_START"]) == (
        "SEQ_START",
        {"seq_id": 4},
    )
    with pytest.raises(GroundError, match="write arguments as name=value"):
        parse_command_line("SEQ_START 4 5", d.commands["SEQ_START"])
    with pytest.raises(GroundError, match="cannot read that line"):
        parse_command_line("PING 'unterminated")
