"""``--home DIR`` works before or after the command's words, for every command, as the
README says; and when given in both places the one nearer the action wins."""

from pathlib import Path

import pytest

from agentspace_gateway.cli import COMMANDS, build_parser, main

from conftest import PASSPHRASE

# One invocation of every command and action.
INVOCATIONS = [
    ["serve"],
    ["open", "--print"],
    ["chat", "--message", "hi"],
    ["usage"],
    ["sessions"],
    ["keys", "add", "anthropic"],
    ["keys", "update", "anthropic"],
    ["keys", "remove", "anthropic"],
    ["keys", "list"],
    ["token", "show"],
    ["token", "rotate"],
    ["audit"],
    ["migrate", "--status"],
    ["models"],
    ["protocol"],
    ["clients", "add", "laptop"],
    ["clients", "list"],
    ["clients", "revoke", "laptop"],
    ["budgets", "list"],
    ["budgets", "set", "global", "5", "--period", "month"],
    ["budgets", "remove", "global", "--period", "month"],
    ["doctor"],
]


def test_every_command_is_covered() -> None:
    names = {command.__name__.rsplit(".", 1)[1] for command in COMMANDS}
    assert {words[0] for words in INVOCATIONS} == names


@pytest.mark.parametrize("words", INVOCATIONS, ids=" ".join)
def test_home_before_or_after_the_command(words: list[str], tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    parser = build_parser()
    before = parser.parse_args(["--home", home, *words])
    after = parser.parse_args([*words, "--home", home])
    absent = parser.parse_args(words)

    assert before.home == home
    assert after.home == home
    assert absent.home is None
    assert vars(before) == vars(after)


def test_keys_home_between_command_and_action(tmp_path: Path) -> None:
    args = build_parser().parse_args(["keys", "--home", str(tmp_path), "list"])
    assert args.home == str(tmp_path)


def test_the_later_home_wins(tmp_path: Path) -> None:
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    args = build_parser().parse_args(["--home", first, "keys", "list", "--home", second])
    assert args.home == second


def test_home_after_the_command_is_where_it_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTSPACE_HOME", str(tmp_path / "default"))
    monkeypatch.setenv("AGENTSPACE_VAULT_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "chosen"

    assert main(["migrate", "--home", str(home)]) == 0
    assert main(["keys", "list", "--home", str(home)]) == 0
    assert main(["migrate", "--status", "--home", str(home)]) == 0

    out = capsys.readouterr().out
    assert f"database: {home / 'agentspace.db'}" in out
    assert "vault backend: file" in out
    assert (home / "agentspace.db").exists()
    assert not (tmp_path / "default").exists()
