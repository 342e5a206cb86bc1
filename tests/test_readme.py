"""The README tells the truth: its tour is run and compared with the real output, and
every CLI command and option is documented there.

Reading a ``console`` block: ``$ `` lines are commands (a trailing ``\\`` continues one),
the lines up to the next command are its output. A line that is only ``…`` stands for
any number of lines; a ``…`` inside a line stands for any text when the line does not
match as written (the CLI itself cuts long cells with ``…``); ``[0.2s]`` durations
match any duration. A ``yaml`` block whose first line is ``# FILE`` is written to FILE
before the commands run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aureacore_db.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
DURATION = re.compile(r"\[\d+(\.\d+)?s\]")


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == kind]


def _sessions() -> list[tuple[list[str], list[str]]]:
    """(command words, expected output lines) of every ``aureacore-db`` command shown."""
    found = []
    for block in _blocks("console"):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            words = shlex.split(command)
            if words[0] == "aureacore-db":
                found.append((words[1:], output))
    return found


def _line_matches(expected: str, actual: str) -> bool:
    expected, actual = DURATION.sub("[…s]", expected), DURATION.sub("[…s]", actual)
    if expected == actual:
        return True
    if "…" not in expected:
        return False
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual) is not None


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` fits ``expected`` (``…`` lines skip any number of lines)."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    while actual and not actual[-1].strip():
        actual = actual[:-1]
    if not expected:
        return not actual
    if expected[0].strip() == "…":
        return any(_matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and _line_matches(expected[0], actual[0]) and _matches(
        expected[1:], actual[1:])


def test_the_tour_prints_what_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in _blocks("yaml"):
        first, _, rest = block.partition("\n")
        if first.startswith("# ") and "." in first:
            (tmp_path / first[2:].strip()).write_text(rest)
    sessions = _sessions()
    assert len(sessions) >= 5
    runner = CliRunner()
    for words, expected in sessions:
        result = runner.invoke(cli, words)
        actual = result.output.splitlines()
        assert _matches(expected, actual), (
            f"README shows for `aureacore-db {' '.join(words)}`:\n" + "\n".join(expected)
            + "\n\nbut it prints:\n" + result.output)


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += _commands(command, prefix + name + " ")
    return found


@pytest.mark.parametrize("name,command", _commands(cli), ids=lambda v: str(v))
def test_every_command_and_option_is_in_the_readme(name, command):
    """Each command has a row of the CLI table naming all of its options."""
    row = "\n".join(line for line in README.read_text().splitlines()
                    if line.startswith((f"| `{name} ", f"| `{name}`")))
    assert row, f"the CLI table has no row for {name!r}"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            flags = param.opts + param.secondary_opts
            assert any(flag in row for flag in flags), f"{name}: {'/'.join(flags)} undocumented"
