"""The operator console: ``gnomon ground console --link URL``.

A prompt (prompt_toolkit) with completion of command names and ``arg=`` names from the
dictionary (types, ranges and units shown beside them), validation before anything is
sent, a history file, and live output: each command's verification stages as they
arrive, events, and replies. Console commands::

    PING                                  send a command (args as name=value)
    SEQ_START seq_id=3                    ... or positionally: SEQ_START 3
    HK_ONE_SHOT sids=[1,264]              lists in [] (JSON or Python literals)
    set health.max_restarts=5             PARAM_SET by parameter name
    get health.max_restarts               PARAM_GET; the value prints when it arrives
    at +30 PING                           time-tagged: run on board in 30 s
    tlm [pattern]   events [n]   cmds [n]   stats   watch [pattern]   help [CMD]   quit

It works on a full terminal, on a dumb one (``TERM=dumb``, e.g. under a test's pty or
Emacs), and with commands piped to stdin (one per line; it waits for the last commands
to finish before it exits, and the exit status says whether they all completed).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import shlex
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from rich.console import Console as RichConsole
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ground.archive import ground_time_text, utc_text
from ground.dictionary import CommandDef, Dictionary
from ground.errors import GroundError
from ground.records import Decoded, EventRecord, format_value
from ground.station import GroundStation
from ground.tracker import CommandHandle, Stage, StageRecord

PROMPT = "gnd> "
CONSOLE_COMMANDS: dict[str, str] = {
    "help": "help [CMD]: list commands, or describe one",
    "tlm": "tlm [pattern]: latest telemetry of a component (eps), a glob or a substring",
    "events": "events [n]: the last n events (default 20)",
    "cmds": "cmds [n]: the last n commands and their stages",
    "stats": "stats [filter]: link, COP-1 and decoder counters",
    "watch": "watch [pattern]: live telemetry and events until Ctrl-C",
    "set": "set PARAM=VALUE ...: set parameters by name (PARAM_SET)",
    "get": "get PARAM ...: read parameters by name (PARAM_GET)",
    "at": "at +SECONDS|TAI CMD [args]: time-tagged command run on board later",
    "wait": "wait SECONDS: pause (for scripts)",
    "quit": "quit: leave the console (also exit, Ctrl-D)",
}
SEVERITY_STYLE = {"INFO": "", "LOW": "cyan", "MEDIUM": "yellow", "HIGH": "bold red"}
STAGE_STYLE = {Stage.COMPLETED: "green", Stage.FAILED: "bold red", Stage.TIMED_OUT: "yellow"}


def parse_value(text: str) -> Any:
    """A typed value from console text: JSON or a Python literal, else the text itself.

    >>> parse_value("5"), parse_value("[1, 2]"), parse_value("SAFE"), parse_value("1e3")
    (5, [1, 2], 'SAFE', 1000.0)
    """
    for parser in (json.loads, ast.literal_eval):
        try:
            return parser(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def parse_command_line(line: str, cmd: CommandDef | None = None) -> tuple[str, dict[str, Any]]:
    """``NAME a=1 b=[2,3]`` (or positional ``NAME 1 [2,3]``) to (name, args).

    >>> parse_command_line("SEQ_LOAD seq_id=3 name='two words' steps=[]")
    ('SEQ_LOAD', {'seq_id': 3, 'name': 'two words', 'steps': []})
    """
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise GroundError(f"cannot read that line: {exc}") from None
    if not tokens:
        return "", {}
    return tokens[0], parse_arguments(tokens[0], tokens[1:], cmd)


def parse_arguments(
    name: str, tokens: Sequence[str], cmd: CommandDef | None = None
) -> dict[str, Any]:
    """Argument tokens (``a=1`` or, in declaration order, plain values) to a dict."""
    args: dict[str, Any] = {}
    positional = [f.name for f in cmd.args] if cmd else []
    for i, tok in enumerate(tokens):
        key, eq, value = tok.partition("=")
        if eq and key.isidentifier():
            args[key] = parse_value(value)
        elif i < len(positional) and not eq:
            args[positional[i]] = parse_value(tok)
        else:
            raise GroundError(f"{name}: cannot read '{tok}'; write arguments as name=value")
    return args


def channel_pattern(pattern: str, channels: Iterable[str]) -> str | None:
    """What ``tlm PATTERN`` selects: a glob as given; a component name (``eps``) its
    channels (``eps.*``), not every name containing it (``scrubber.sweeps``); else a
    substring.

    >>> channel_pattern("eps", ["eps.soc_pct", "scrubber.sweeps"])
    'eps.*'
    >>> channel_pattern("soc", ["eps.soc_pct"]), channel_pattern("", ["eps.soc_pct"])
    ('soc', None)
    """
    if not pattern:
        return None
    if not any(c in pattern for c in "*?[") and any(
        n.startswith(pattern.rstrip(".") + ".") for n in channels
    ):
        return pattern.rstrip(".") + ".*"
    return pattern


def command_list_lines(names: Sequence[str], width: int) -> list[str]:
    """Command names, comma-separated, wrapped between names to ``width`` columns."""
    import textwrap

    return textwrap.wrap(
        ", ".join(names),
        width=max(40, width - 2),
        initial_indent="  ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


class DictionaryCompleter(Completer):
    """Completes console words, command names, ``arg=`` names and enum labels."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.d = dictionary

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        words = text.split()
        if not words or (len(words) == 1 and not text.endswith(" ")):
            prefix = words[0] if words else ""
            yield from self._names(prefix)
            return
        head = words[0]
        if head == "at" and len(words) >= 2:
            words = words[2:] if len(words) > 2 or text.endswith(" ") else []
            if not words or (len(words) == 1 and not text.endswith(" ")):
                yield from self._names(words[0] if words else "", console=False)
                return
            head = words[0]
        current = "" if text.endswith(" ") else words[-1]
        if head in ("set", "get"):
            yield from self._params(current, settable=head == "set")
        elif head in ("tlm", "watch"):
            yield from self._channels(current)
        elif head == "help":
            yield from self._names(current, console=False)
        else:
            yield from self._arguments(head, current, words)

    def _params(self, current: str, settable: bool) -> Iterator[Completion]:
        for p in self.d.params.values():
            if p.name.startswith(current.split("=")[0]) and "=" not in current:
                yield Completion(
                    p.name + ("=" if settable else ""),
                    -len(current),
                    display_meta=f"{p.field.describe()} (default {p.default})",
                )

    def _channels(self, current: str) -> Iterator[Completion]:
        for name, ch in self.d.channels.items():
            if name.startswith(current):
                meta = ", ".join(x for x in (ch.field.describe(), ch.description) if x)
                yield Completion(name, -len(current), display_meta=meta)

    def _arguments(self, head: str, current: str, words: list[str]) -> Iterator[Completion]:
        """``arg=`` names of command ``head`` not given yet, or the labels of an enum."""
        cmd = self.d.commands.get(head)
        if cmd is None:
            return
        key, eq, value = current.partition("=")
        if eq:
            for f in cmd.args:
                if f.name == key and f.type == "enum":
                    for _, label in f.labels:
                        if label.startswith(value):
                            yield Completion(label, -len(value))
            return
        given = {w.split("=", 1)[0] for w in words[1:] if "=" in w}
        for f in cmd.args:
            if f.name not in given and f.name.startswith(key):
                yield Completion(f"{f.name}=", -len(current), display_meta=f.describe())

    def _names(self, prefix: str, console: bool = True) -> Iterator[Completion]:
        if console:
            for word, meta in CONSOLE_COMMANDS.items():
                if word.startswith(prefix):
                    yield Completion(word, -len(prefix), display_meta=meta.split(":", 1)[1])
        for cmd in self.d.commands.values():
            if cmd.name.startswith(prefix) or cmd.name.lower().startswith(prefix.lower()):
                yield Completion(
                    cmd.name,
                    -len(prefix),
                    display_meta=cmd.description or f"({cmd.service},{cmd.subservice})",
                )


class Console:
    """The interactive console on a started :class:`GroundStation`.

    ``mode``: ``auto`` (prompt_toolkit on a terminal, plain lines when stdin is a pipe),
    ``prompt`` or ``lines``. ``drain_s``: how long to wait for pending commands at the end.
    """

    def __init__(
        self,
        station: GroundStation,
        *,
        history_file: Path | None = None,
        mode: str = "auto",
        drain_s: float = 10.0,
        stdin: TextIO | None = None,
        out: RichConsole | None = None,
    ) -> None:
        self.station = station
        self.d = station.dictionary
        self.history_file = history_file
        self.stdin = stdin or sys.stdin
        if mode == "auto":
            mode = "prompt" if self.stdin.isatty() else "lines"
        if mode not in ("prompt", "lines"):
            raise GroundError(f"console mode must be auto, prompt or lines, not {mode!r}")
        self.mode = mode
        self.drain_s = drain_s
        self.out = out or RichConsole(highlight=False, soft_wrap=True)
        self._print_lock = threading.Lock()
        self._errors = 0
        self._mine: set[int] = set()
        station.on_stage(self._on_stage)
        station.on_decoded(self._on_decoded)

    # -- output -------------------------------------------------------------------------

    def say(self, *objects: Any, style: str | None = None) -> None:
        """Print (thread-safe; above the prompt while one is shown)."""
        with self._print_lock:
            self.out.print(*objects, style=style)

    def error(self, message: str) -> None:
        """Print an error line and count it for the exit status."""
        self._errors += 1
        self.say(Text("error: ", style="bold red") + Text(message))

    def _on_stage(self, handle: CommandHandle, rec: StageRecord) -> None:
        if rec.stage in (Stage.SENT, Stage.SCHEDULED):
            return  # the console printed the send itself
        style = STAGE_STYLE.get(rec.stage, "")
        # a guest's command relayed by this console, or one from an earlier ground run
        whose = "" if handle.id in self._mine else " (not sent from this console)"
        self.say(Text(f"  {handle.summary()}{whose}", style=style))

    def _on_decoded(self, dec: Decoded) -> None:
        if dec.event is not None:
            self.say(self._event_text(dec.event))
        elif dec.kind == "reply":
            detail = self._reply_text(dec)
            self.say(
                Text(f"  reply {dec.name}", style="cyan")
                + Text(f": {detail}" if dec.fields else "")
            )
        elif dec.error is not None:
            self.say(Text(f"  undecodable {dec.name}: {dec.error}", style="magenta"))

    def _reply_text(self, dec: Decoded) -> str:
        params = dec.fields.get("params")
        if isinstance(params, list) and all(isinstance(p, dict) for p in params):
            parts = []
            for p in params:
                pd = self.d.params_by_id.get(p.get("param_id", -1))
                name = pd.name if pd else str(p.get("param_id"))
                units = f" {pd.field.units}" if pd and pd.field.units else ""
                parts.append(f"{name} = {format_value(p.get('value'))}{units}")
            return ", ".join(parts)
        return json.dumps(dec.fields, default=lambda v: v.hex() if isinstance(v, bytes) else str(v))

    @staticmethod
    def _event_text(ev: EventRecord) -> Text:
        clock = "S/C " + utc_text(ev.t_tai)[11:19]  # on-board time, not the host's
        style = SEVERITY_STYLE.get(ev.severity, "")
        return (
            Text(f"  [{clock}] ")
            + Text(f"{ev.severity:<6}", style=style)
            + Text(f" {ev.name}: {ev.message}")
        )

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        """Read and execute lines until quit/EOF. The exit status: 0, or in ``lines`` mode
        1 when a line was refused or a command failed or timed out (scripts check it)."""
        st = self.station
        self.say(
            Text(
                f"Gnomon ground console on {st.url} — dictionary "
                f"{self.d.content_hash[:19]} ({len(self.d.commands)} commands, "
                f"{len(self.d.channels)} channels). Type help; Tab completes.",
                style="bold",
            )
        )
        lines = self._prompt_lines() if self.mode == "prompt" else self._plain_lines()
        for line in lines:
            if not self.execute(line):
                break
        self._drain()
        return 1 if self._errors and self.mode == "lines" else 0

    def _plain_lines(self) -> Iterator[str]:
        for raw in self.stdin:
            line = raw.strip()
            self.say(Text(PROMPT + line, style="dim"))
            yield line

    def _prompt_lines(self) -> Iterator[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history: FileHistory | InMemoryHistory = InMemoryHistory()
        if self.history_file is not None:
            try:
                self.history_file.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(self.history_file))
            except OSError as exc:
                self.error(f"cannot use history file {self.history_file}: {exc.strerror}")
        session: PromptSession[str] = PromptSession(
            history=history,
            completer=DictionaryCompleter(self.d),
            complete_while_typing=False,
            bottom_toolbar=self._toolbar,
            refresh_interval=1.0,
        )
        with patch_stdout(raw=True):
            while True:
                try:
                    yield session.prompt(PROMPT)
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    return

    def _toolbar(self) -> str:
        try:
            from prompt_toolkit.application import get_app

            width = get_app().output.get_size().columns
        except Exception:  # no application running (tests)
            width = self.out.width
        return self.toolbar_text(width)

    def toolbar_text(self, width: int = 80) -> str:
        """The bottom toolbar: link, telemetry age, COP-1, pending commands, limits; the
        least useful parts are left out first so that it fits ``width`` columns. Limits
        are only "ok" once telemetry has arrived and none is out of limits or flagged."""
        s = self.station.stats
        age = s["last_tm_age_s"]
        contact = "no downlink yet" if age is None else f"TM {age:.1f} s ago"
        colours = [v.limit.colour for v in self.station.telemetry.values()]
        red, yellow, bad = (colours.count(c) for c in ("red", "yellow", "magenta"))
        if not colours:
            limits = "limits: no TM yet"
        elif not red and not yellow and not bad:
            limits = "limits ok"
        else:
            limits = f"limits: {red} red, {yellow} yellow" + (f", {bad} invalid" if bad else "")
        status = s["transport_status"]
        parts = [
            f"{self.station.url}" + ("" if status == "connected" else f" {status}"),
            contact,
            f"FOP {s['fop_state']} V(R)={s['farm_vr']}",
            f"{s['commands_pending']} pending",
            limits,
        ]
        if s["farm_vr"] is None:
            parts[2] = f"FOP {s['fop_state']}"
        text = " " + " | ".join(parts)
        if len(text) > width - 1 and status == "connected":
            text = " " + " | ".join(parts[1:])  # the URL is in the banner
        return text

    def _drain(self) -> None:
        """Wait for this console's pending commands; count failures for the exit status."""
        mine = [h for h in self.station.commands if h.id in self._mine]
        pending = [h for h in mine if not h.done]
        if pending:
            self.station.wait_for(lambda: all(h.done for h in pending), self.drain_s)
        for h in pending:
            if not h.done:
                self.error(f"{h.summary()} — still waiting after {self.drain_s:g} s")
        self._errors += sum(1 for h in mine if h.failed or h.timed_out)

    # -- commands -----------------------------------------------------------------------

    def execute(self, line: str) -> bool:
        """Run one console line; False means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            if word in ("quit", "exit"):
                return False
            handler = {
                "help": self._help,
                "tlm": self._tlm,
                "events": self._events,
                "cmds": self._cmds,
                "stats": self._stats,
                "watch": self._watch,
                "set": self._set,
                "get": self._get,
                "at": self._at,
                "wait": self._wait,
            }.get(word)
            if handler is not None:
                handler(rest)
            else:
                self._send(line)
        except GroundError as exc:
            self.error(str(exc))
        return True

    def _send(self, line: str, release: float | None = None) -> None:
        name = line.split(None, 1)[0]
        cmd = self.d.command(name)  # unknown: did-you-mean error
        _, args = parse_command_line(line, cmd)
        if release is None:
            handle = self.station.send_args(cmd.name, args)
            self._mine.add(handle.id)
            self.say(Text(f"  {handle.summary()}", style="dim"))
            return
        insert, inner = self.station.send_time_tagged(cmd.name, release, **args)
        self._mine.update((insert.id, inner.id))
        self.say(
            Text(f"  {insert.summary()}; {inner.summary()} ({utc_text(release)})", style="dim")
        )

    def _at(self, rest: str) -> None:
        when, _, line = rest.partition(" ")
        if not line.strip():
            raise GroundError("at: write `at +SECONDS CMD args` or `at TAI_SECONDS CMD args`")
        try:
            value = float(when)
        except ValueError:
            raise GroundError(f"at: '{when}' is not a time (+seconds or TAI seconds)") from None
        if when.startswith("+"):
            now_tai = self.station.spacecraft_tai()
            if now_tai is None:
                raise GroundError("at +SECONDS needs the on-board time: no telemetry yet")
            value += now_tai
        self._send(line.strip(), release=value)

    def _set(self, rest: str) -> None:
        if not rest:
            raise GroundError("set: write `set PARAM=VALUE [PARAM=VALUE ...]`")
        params = []
        for tok in shlex.split(rest):
            name, eq, value = tok.partition("=")
            if not eq:
                raise GroundError(f"set: '{tok}' has no =VALUE")
            pd = self.d.params.get(name)
            if pd is None:
                raise GroundError(
                    f"set: no parameter named '{name}'{self.d.suggest(name, 'param')}"
                )
            params.append({"param_id": pd.id, "value": parse_value(value)})
        self._send_param((20, 3), params)

    def _get(self, rest: str) -> None:
        names = shlex.split(rest)
        if not names:
            raise GroundError("get: write `get PARAM [PARAM ...]`")
        ids = []
        for name in names:
            pd = self.d.params.get(name)
            if pd is None:
                raise GroundError(
                    f"get: no parameter named '{name}'{self.d.suggest(name, 'param')}"
                )
            ids.append({"param_id": pd.id})
        self._send_param((20, 1), ids)

    def _send_param(self, kind: tuple[int, int], items: list[dict[str, Any]]) -> None:
        cmd = next(
            (
                c
                for c in self.d.commands.values()
                if (c.service, c.subservice) == kind and c.function_id is None
            ),
            None,
        )
        if cmd is None or len(cmd.args) != 1:
            raise GroundError("the dictionary has no parameter service (20) command for this")
        handle = self.station.send_args(cmd.name, {cmd.args[0].name: items})
        self._mine.add(handle.id)
        self.say(Text(f"  {handle.summary()}", style="dim"))

    def _wait(self, rest: str) -> None:
        try:
            seconds = float(rest or "1")
        except ValueError:
            raise GroundError(f"wait: '{rest}' is not a number of seconds") from None
        time.sleep(max(0.0, min(seconds, 3600.0)))

    def _help(self, rest: str) -> None:
        if rest:
            word = rest.split()[0]
            if word in CONSOLE_COMMANDS:
                self.say(Text(CONSOLE_COMMANDS[word]))
                return
            cmd = self.d.command(word)
            title = Text(f"{cmd.name} ({cmd.service},{cmd.subservice})", style="bold") + Text(
                f": {cmd.description}" if cmd.description else ""
            )
            if not cmd.args:
                self.say(title + Text(f"\n  no arguments: send it as `{cmd.name}`"))
                return
            described = any(f.description for f in cmd.args)
            table = Table(title=title, title_justify="left")
            for col in ("argument", "type and range", "description")[: 3 if described else 2]:
                table.add_column(col)
            for f in cmd.args:  # Text: "list of [channel_id: ...]" is not rich markup
                cells = (Text(f.name), Text(f.describe()), Text(f.description))
                table.add_row(*cells[: 3 if described else 2])
            self.say(table)
            usage = " ".join([cmd.name, *(f"{f.name}=..." for f in cmd.args)])
            easier = {(20, 3): "; easier: set PARAM=VALUE", (20, 1): "; easier: get PARAM"}
            self.say(
                Text(
                    f"  usage: {usage}  (or the values in this order)"
                    f"{easier.get((cmd.service, cmd.subservice), '')}"
                )
            )
            return
        table = Table(title="console commands", title_justify="left", show_header=False)
        for text in CONSOLE_COMMANDS.values():
            usage, _, meta = text.partition(": ")
            table.add_row(Text(usage), Text(meta.strip()))  # [pattern] is not markup
        self.say(table)
        self.say(
            Text(
                f"spacecraft commands ({len(self.d.commands)}; `help NAME` for "
                "arguments, Tab completes):",
                style="bold",
            )
        )
        for line in command_list_lines(sorted(self.d.commands), self.out.width):
            self.say(line)

    def _tlm_table(self, pattern: str) -> Table:
        values = self.station.telemetry.values(channel_pattern(pattern, self.d.channels))
        now_tai = self.station.spacecraft_tai()
        table = Table(
            title=f"telemetry{' ' + pattern if pattern else ''} ({len(values)})",
            title_justify="left",
        )
        for col, just in (
            ("channel", "left"),
            ("value", "right"),
            ("units", "left"),
            ("limit", "left"),
            ("age s", "right"),
        ):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for v in values:
            age = "" if now_tai is None else f"{max(0.0, now_tai - v.t_tai):.1f}"
            colour = v.limit.colour
            table.add_row(
                v.name,
                Text(v.text, style=colour if colour != "green" else ""),
                v.units,
                Text(v.limit.value, style=colour),
                age,
            )
        return table

    def _tlm(self, rest: str) -> None:
        tlm = self.station.telemetry
        if not len(tlm):
            self.say("no telemetry received yet")
            return
        if rest and not tlm.values(channel_pattern(rest, self.d.channels)):
            known = any(
                fnmatch.fnmatchcase(n, channel_pattern(rest, self.d.channels) or "*") or rest in n
                for n in self.d.channels
            )
            self.say(
                Text(
                    f"no value of {rest} received yet ({len(tlm)} channels so far; "
                    "`tlm` lists them)"
                    if known
                    else f"no channel matches '{rest}'{self.d.suggest(rest, 'channel')}"
                )
            )
            return
        self.say(self._tlm_table(rest))

    def _events_table(self, n: int) -> Table:
        events = self.station.events[-n:]
        days = {utc_text(ev.t_tai)[:10] for ev in events}
        one_day = len(days) == 1  # then the date goes in the title, the time in the column
        # event times are on-board times (TAI to UTC), not the host's clock: in SITL the two
        # are days apart, so the column says whose clock it is
        table = Table(
            title=f"events (last {len(events)}"
            f"{', ' + days.pop() + ' UTC on board' if one_day else ''})",
            title_justify="left",
        )
        for col in ("S/C time (UTC)", "severity", "event", "message"):
            table.add_column(col)
        for ev in events:
            when = utc_text(ev.t_tai)
            table.add_row(
                when[11:19] if one_day else when[:19].replace("T", " "),
                Text(ev.severity, style=SEVERITY_STYLE.get(ev.severity, "")),
                ev.name,
                ev.message,
            )
        return table

    def _events(self, rest: str) -> None:
        try:
            n = int(rest or "20")
        except ValueError:
            raise GroundError(f"events: '{rest}' is not a count") from None
        if not self.station.events:
            self.say("no events received yet")
            return
        self.say(self._events_table(n))

    def _cmds(self, rest: str) -> None:
        try:
            n = int(rest or "20")
        except ValueError:
            raise GroundError(f"cmds: '{rest}' is not a count") from None
        if not self.station.commands.recent(1):
            self.say("no commands sent yet")
            return
        table = Table(title="commands", title_justify="left")
        for col in ("#", "sent (host UTC)", "command", "status", "stages", "failure"):
            table.add_column(col)
        for h in self.station.commands.recent(n):
            stages = " → ".join(f"{r.stage.value}" for r in h.stages)
            if len(h.stages) > 1:
                stages += f" ({h.stages[-1].t_ground_s - h.t_sent_s:.1f} s)"
            fail = f"{h.failure_code}: {h.reason}" if h.failure_code else ""
            sent = ground_time_text(h.t_sent_s)[11:19]  # the station's clock is Unix seconds
            table.add_row(
                str(h.seq_count),
                sent,
                h.name,
                Text(h.status.value, style=STAGE_STYLE.get(h.status, "")),
                stages,
                fail,
            )
        self.say(table)

    def _stats(self, rest: str) -> None:
        table = Table(title="link and decoder", title_justify="left", show_header=False)
        for key, value in self.station.stats.items():
            if rest and rest not in key:
                continue
            if value not in (0, None) or key in ("tm_packets", "tc_sent", "decode_errors"):
                table.add_row(key, str(value))
        self.say(table)

    def _watch(self, rest: str) -> None:
        if self.mode != "prompt":
            self.say(Group(self._tlm_table(rest), self._events_table(10)))
            return
        try:
            with Live(
                Group(self._tlm_table(rest), self._events_table(10)),
                console=self.out,
                refresh_per_second=2,
                transient=True,
            ) as live:
                self.say(Text("watching; Ctrl-C to stop", style="dim"))
                while True:
                    time.sleep(0.5)
                    live.update(Group(self._tlm_table(rest), self._events_table(10)))
        except KeyboardInterrupt:
            return


__all__ = [
    "Console",
    "DictionaryCompleter",
    "channel_pattern",
    "command_list_lines",
    "parse_arguments",
    "parse_command_line",
    "parse_value",
]
