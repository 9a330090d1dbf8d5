"""Loading the configuration: defaults < config.toml < AGENTSPACE_* < CLI flags.

Every value remembers where it came from, so a bad one is reported with its key and its
source ("server.port = 'abc' (from environment variable AGENTSPACE_SERVER_PORT): ...").
"""

import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from agentspace_gateway.config import Config
from agentspace_gateway.strict_converter import make_strict_converter, validation_problems

ENV_PREFIX = "AGENTSPACE_"
# Environment variables of ours that are not configuration keys.
# AGENTSPACE_CLIENT_KEY: the terminal client's credential where there is no vault to read.
NON_CONFIG_ENV = frozenset(
    {"AGENTSPACE_HOME", "AGENTSPACE_VAULT_PASSPHRASE", "AGENTSPACE_CLIENT_KEY"}
)


class ConfigError(Exception):
    """A configuration value is unusable; the message names the key and its source."""


# (section, key) -> where its value came from, for error messages.
Sources = dict[tuple[str, str], str]

_converter = make_strict_converter()


def config_fields() -> dict[tuple[str, str], Any]:
    """Every leaf key of the configuration with its declared type."""
    leaves: dict[tuple[str, str], Any] = {}
    for section in attrs.fields(Config):
        section_type = typing.get_type_hints(Config)[section.name]
        if not attrs.has(section_type):
            continue  # tables keyed by name (pricing) live in config.toml only
        for key, key_type in typing.get_type_hints(section_type).items():
            leaves[(section.name, key)] = key_type
    return leaves


def env_var_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


class ConfigLayers:
    """Values stacked from the lowest layer to the highest, each leaf tagged with its source."""

    def __init__(self) -> None:
        # A section may hold a non-table value from a bad file, kept for the converter to report.
        self.values: dict[str, Any] = {}
        self.sources: Sources = {}

    def add(self, values: Mapping[str, Any], source: str) -> None:
        for section, section_values in values.items():
            if not isinstance(section_values, Mapping):
                # Left as is so the converter reports it against the section.
                self.values[section] = section_values
                self.sources[(section, "")] = source
                continue
            target = self.values.setdefault(section, {})
            if not isinstance(target, dict):
                target = self.values[section] = {}
            self.sources.setdefault((section, ""), source)
            for key, value in section_values.items():
                target[key] = value
                self.sources[(section, key)] = source

    def build(self) -> Config:
        try:
            return _converter.structure(self.values, Config)
        except cattrs.ClassValidationError as error:
            raise ConfigError(self._describe(error)) from None

    def _describe(self, error: cattrs.ClassValidationError) -> str:
        lines = []
        for path, problem in validation_problems(error):
            section = str(path[0]) if path else ""
            key = str(path[1]) if len(path) > 1 else ""
            if isinstance(problem, cattrs.ForbiddenExtraKeysError):
                for extra in sorted(problem.extra_fields):
                    leaf = (section, extra) if section else (extra, "")
                    name = f"{section}.{extra}" if section else extra
                    lines.append(
                        f"{name}: unknown key (from {self.sources.get(leaf, 'configuration')})"
                    )
                continue
            source = self.sources.get((section, key)) or self.sources.get((section, ""), "defaults")
            name = ".".join(str(step) for step in path)
            value = _lookup(self.values, path)
            reason = "required" if isinstance(problem, KeyError) else str(problem)
            lines.append(f"{name} = {value!r} (from {source}): {reason}")
        return "invalid configuration:\n  " + "\n  ".join(lines)


def _lookup(values: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if not isinstance(values, Mapping):
            return None
        values = values.get(str(step))
    return values


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


def values_from_environment(
    environ: Mapping[str, str],
) -> tuple[dict[str, dict[str, Any]], Sources]:
    """Configuration keys set through AGENTSPACE_<SECTION>_<KEY>, parsed by their declared type."""
    values: dict[str, dict[str, Any]] = {}
    sources: Sources = {}
    known = config_fields()
    by_name = {env_var_name(section, key): (section, key) for section, key in known}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NON_CONFIG_ENV:
            continue
        if name not in by_name:
            raise ConfigError(
                f"unknown configuration variable {name}; known ones are: "
                + ", ".join(sorted(by_name))
            )
        section, key = by_name[name]
        source = f"environment variable {name}"
        values.setdefault(section, {})[key] = parse_text_value(
            raw, known[(section, key)], f"{section}.{key} = {raw!r} (from {source})"
        )
        sources[(section, key)] = source
    return values, sources


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_text_value(raw: str, declared: Any, described_as: str) -> Any:
    """Turn the text of an environment variable into the declared type, or say why not."""
    text = raw.strip()
    if declared is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{described_as}: expected true or false")
    if declared is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{described_as}: expected an integer") from None
    if declared is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{described_as}: expected a number") from None
    if typing.get_origin(declared) is tuple:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text


def load_config(
    config_file: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    override_sources: Sources | None = None,
) -> Config:
    """Defaults < config.toml < AGENTSPACE_* environment < command-line overrides."""
    layers = ConfigLayers()
    layers.add(read_config_file(config_file), f"{config_file}")
    env_values, env_sources = values_from_environment(os.environ if environ is None else environ)
    layers.add(env_values, "environment")
    layers.sources.update(env_sources)
    if overrides:
        layers.add(overrides, "command line")
        layers.sources.update(override_sources or {})
    return layers.build()
