"""The command line's shape: options that mean the same are one shared option, and each
command module is named for the commands it holds."""

from __future__ import annotations

import socket

import click
import pytest

from aureacore_db import cli_common
from aureacore_db.cli import cli


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, prefix + name + " ")
        else:
            found.append((prefix + name, command))
    return found


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params
                 if isinstance(p, click.Option) and flag in p.opts), None)


def test_every_db_option_is_the_shared_one():
    with_db = [(name, _option(command, "--db")) for name, command in _commands(cli)]
    with_db = [(name, option) for name, option in with_db if option is not None]
    assert len(with_db) >= 12
    for name, option in with_db:
        assert option.help.startswith(cli_common.DB_HELP), name
        if name == "serve":  # several databases
            assert option.multiple and option.name == "db_paths"
        else:
            assert option.default == "registry.db" and option.name == "db_path", name


@pytest.mark.parametrize("flag,help_text", [("--repo", (cli_common.REPO_HELP,
                                                        cli_common.LOCAL_REPO_HELP)),
                                            ("--branch", (cli_common.BRANCH_HELP,))])
def test_repo_and_branch_say_the_same_everywhere(flag, help_text):
    for name, command in _commands(cli):
        option = _option(command, flag)
        if option is not None and name != "ingest":  # ingest's --branch: the one to walk
            assert option.help in help_text, name


def test_every_json_flag_is_as_json():
    for name, command in _commands(cli):
        option = _option(command, "--json")
        if option is not None:
            assert option.name == "as_json" and option.is_flag, name
            assert option.help.startswith("Print ") and option.help.endswith(" as JSON."), name


def test_command_modules_are_named_for_their_commands():
    from aureacore_db import cli_deps, cli_health, cli_webhooks

    assert [c.name for c in cli_deps.COMMANDS] == ["deps"]
    assert [c.name for c in cli_health.COMMANDS] == ["health"]
    assert [c.name for c in cli_webhooks.COMMANDS] == ["deliver", "webhooks"]


def test_check_port_refuses_a_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(click.ClickException, match=f"cannot serve on 127.0.0.1:{port}"):
            cli_common.check_port("127.0.0.1", port)
