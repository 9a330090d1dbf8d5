"""Configuration precedence and errors that name the key and where the value came from."""

from pathlib import Path

import pytest

from agentspace_gateway.cli import main
from agentspace_gateway.config import Config
from agentspace_gateway.config_loading import ConfigError, load_config
from agentspace_gateway.home import Home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.toml", environ={})
    assert config == Config()
    assert (config.server.host, config.server.port, config.vault.backend) == (
        "127.0.0.1",
        3271,
        "auto",
    )


def test_each_layer_beats_the_one_below(tmp_path: Path) -> None:
    file = write(
        tmp_path / "config.toml",
        '[server]\nport = 4000\nhost = "::1"\nallowed_hosts = ["a.lan"]\n'
        '[vault]\nbackend = "file"\n[logging]\nlevel = "DEBUG"\n',
    )
    environ = {"AGENTSPACE_SERVER_PORT": "4001", "AGENTSPACE_SERVER_ALLOWED_HOSTS": "b.lan, c.lan"}

    from_file = load_config(file, environ={})
    from_env = load_config(file, environ=environ)
    from_cli = load_config(file, environ=environ, overrides={"server": {"port": 4002}})

    assert (from_file.server.port, from_file.server.host, from_file.vault.backend) == (
        4000,
        "::1",
        "file",
    )
    assert from_file.logging.level == "DEBUG"
    assert from_env.server.port == 4001
    assert from_env.server.allowed_hosts == ("b.lan", "c.lan")
    assert from_env.server.host == "::1"  # untouched keys keep the file's value
    assert from_cli.server.port == 4002
    assert from_cli.server.allowed_hosts == ("b.lan", "c.lan")


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        (
            '[server]\nport = "3271"\n',
            {},
            "server.port = '3271' (from {file}): expected an integer",
        ),
        ("[server]\nport = 70000\n", {}, "server.port = 70000 (from {file}): must be a TCP port"),
        (
            "[server]\nallow_remote = 1\n",
            {},
            "server.allow_remote = 1 (from {file}): expected true or false",
        ),
        (
            '[vault]\nbackend = "plain"\n',
            {},
            "vault.backend = 'plain' (from {file}): expected one of",
        ),
        ("[server]\nprot = 1\n", {}, "server.prot: unknown key (from {file})"),
        ("[sever]\nport = 1\n", {}, "sever: unknown key (from {file})"),
        ("server = 3\n", {}, "server = 3 (from {file}): expected a table"),
        ('[server]\nallowed_hosts = "a.lan"\n', {}, "expected a list"),
        (
            "",
            {"AGENTSPACE_SERVER_PORT": "abc"},
            "server.port = 'abc' (from environment variable AGENTSPACE_SERVER_PORT): "
            "expected an integer",
        ),
        ("", {"AGENTSPACE_SERVER_PORT": "0x10"}, "AGENTSPACE_SERVER_PORT"),
        ("", {"AGENTSPACE_SERVER_ALLOW_REMOTE": "maybe"}, "expected true or false"),
        (
            "",
            {"AGENTSPACE_LOGGING_LEVEL": "LOUD"},
            "logging.level = 'LOUD' (from environment variable AGENTSPACE_LOGGING_LEVEL)",
        ),
        (
            "",
            {"AGENTSPACE_SERVER_PROT": "1"},
            "unknown configuration variable AGENTSPACE_SERVER_PROT",
        ),
        ("[server\n", {}, "is not valid TOML"),
    ],
)
def test_bad_values_name_key_and_source(
    tmp_path: Path, toml: str, environ: dict[str, str], expected: str
) -> None:
    file = write(tmp_path / "config.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_config(file, environ=environ)
    assert expected.format(file=file) in str(caught.value)


def test_command_line_value_is_blamed_on_its_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server.port = 'x' \(from command line --port\)"):
        load_config(
            tmp_path / "config.toml",
            environ={},
            overrides={"server": {"port": "x"}},
            override_sources={("server", "port"): "command line --port"},
        )


def test_secret_environment_variables_are_not_config_keys(tmp_path: Path) -> None:
    environ = {"AGENTSPACE_HOME": "/x", "AGENTSPACE_VAULT_PASSPHRASE": "p" * 20}
    assert load_config(tmp_path / "config.toml", environ=environ) == Config()


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        ({"AGENTSPACE_SERVER_PORT": "abc"}, ["serve"], "AGENTSPACE_SERVER_PORT"),
        ({}, ["serve", "--port", "http"], "from command line --port"),
        ({"config": "[server]\nport = true\n"}, ["serve"], "config.toml"),
    ],
)
def test_cli_exits_2_on_bad_configuration(
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: dict[str, str],
    argv: list[str],
    message: str,
) -> None:
    for name, value in setup.items():
        if name == "config":
            write(home.config_file, value)
        else:
            monkeypatch.setenv(name, value)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "config error" in error
    assert message in error


def test_home_is_created_private_and_tightened(tmp_path: Path) -> None:
    fresh = Home(tmp_path / "a" / "b").ensure()
    assert fresh.root.stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    Home(loose).ensure()
    assert loose.stat().st_mode & 0o777 == 0o700


def test_home_location_precedence(tmp_path: Path) -> None:
    assert Home.locate(tmp_path / "flag", {"AGENTSPACE_HOME": "/env"}).root == tmp_path / "flag"
    assert Home.locate(None, {"AGENTSPACE_HOME": str(tmp_path)}).root == tmp_path
    assert Home.locate(None, {}).root == Path("~/.config/agentspace").expanduser()


def test_gateway_settings_and_model_normalisation(tmp_path: Path) -> None:
    file = write(
        tmp_path / "config.toml",
        '[gateway]\nrequire_token = true\ndefault_model = "claude-opus-4.1"\n'
        'allowed_origins = ["http://localhost:5173"]\n',
    )
    gateway = load_config(file, environ={"AGENTSPACE_GATEWAY_DEFAULT_AGENT_ID": "coder"}).gateway
    assert gateway.require_token is True
    assert gateway.default_model == "claude-opus-4-1"
    assert gateway.allowed_origins == ("http://localhost:5173",)
    assert gateway.default_agent_id == "coder"
    assert Config().gateway.default_model == "claude-sonnet-5-5"
    assert Config().gateway.max_frame_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AGENTSPACE_GATEWAY_DEFAULT_MODEL": "two words"}, "gateway.default_model"),
        ({"AGENTSPACE_GATEWAY_DEFAULT_AGENT_ID": "a:b"}, "gateway.default_agent_id"),
        ({"AGENTSPACE_GATEWAY_ALLOWED_ORIGINS": "localhost:5173"}, "is not an origin"),
        ({"AGENTSPACE_GATEWAY_SLOW_CLIENT_SECONDS": "0"}, "must be greater than 0"),
    ],
)
def test_bad_gateway_settings(tmp_path: Path, environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(tmp_path / "config.toml", environ=environ)


def test_budgets_time_zone_defaults_to_utc_and_must_be_a_real_zone(tmp_path: Path) -> None:
    assert load_config(tmp_path / "config.toml", environ={}).budgets.time_zone == "UTC"
    good = write(tmp_path / "good.toml", '[budgets]\ntime_zone = "Europe/Paris"\n')
    assert load_config(good, environ={}).budgets.time_zone == "Europe/Paris"
    bad = write(tmp_path / "bad.toml", '[budgets]\ntime_zone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="time_zone must be an IANA time zone"):
        load_config(bad, environ={})
