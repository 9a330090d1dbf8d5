"""A cattrs converter that refuses to guess.

cattrs coerces by default: "5" becomes 5, "no" becomes True, 5 becomes "5". Input from a
config file or the wire must already have the right type, so scalar hooks here check the
type exactly and unknown keys are errors.
"""

from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override


def _exact(expected: type, label: str) -> Any:
    def structure(value: Any, _: type) -> Any:
        # bool is a subclass of int; True is not a port number.
        if type(value) is not expected:
            raise TypeError(f"expected {label}, got {_describe(value)}")
        return value

    return structure


def _integer(value: Any, _: type) -> int:
    # JSON has one number type, and JSON Schema calls 2.0 an integer; a wire decoder that
    # refused it would refuse frames the published schema accepts. True is still not 1.
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {_describe(value)}")
    return value


def _number(value: Any, _: type) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"expected a number, got {_describe(value)}")
    return float(value)


class FieldValueError(ValueError):
    """Raised by an attrs validator so the problem is reported against its own field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


Path = tuple[str | int, ...]


def validation_problems(
    error: BaseException, path: Path = ()
) -> Iterator[tuple[Path, BaseException]]:
    """Flatten a cattrs validation error into (path to the field, what went wrong) pairs."""
    if isinstance(error, cattrs.BaseValidationError):
        for inner in error.exceptions:
            step: Path = ()
            for note in getattr(inner, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    step = (note.name,)
                elif isinstance(note, IterableValidationNote):
                    step = (note.index,)
            yield from validation_problems(inner, path + step)
    elif isinstance(error, FieldValueError):
        yield (*path, error.field), error
    else:
        yield path, error


Rename = Callable[[str], str]


def _renames(type_: Any, rename: Rename | None) -> dict[str, Any]:
    if rename is None:
        return {}
    return {
        attribute.name: override(rename=rename(attribute.name))
        for attribute in attrs.fields(type_)
        if rename(attribute.name) != attribute.name
    }


def _tables_only(type_: Any, converter: cattrs.Converter, rename: Rename | None) -> Any:
    inner = make_dict_structure_fn(
        type_, converter, _cattrs_forbid_extra_keys=True, **_renames(type_, rename)
    )

    def structure(value: Any, actual_type: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a table of keys, got {_describe(value)}")
        return inner(value, actual_type)

    return structure


def _is_literal(type_: Any) -> bool:
    return get_origin(type_) is Literal


def _literal_only(type_: Any, _: cattrs.BaseConverter) -> Any:
    allowed = get_args(type_)

    def structure(value: Any, __: Any) -> Any:
        # Compare types too: True == 1, but True is not the literal 1.
        if not any(type(value) is type(choice) and value == choice for choice in allowed):
            raise ValueError("expected one of " + ", ".join(repr(choice) for choice in allowed))
        return value

    return structure


def _is_array(type_: Any) -> bool:
    return get_origin(type_) in (list, tuple)


def _arrays_only(type_: Any, converter: cattrs.BaseConverter) -> Any:
    # cattrs would happily iterate a string into a tuple of characters.
    if get_origin(type_) is tuple:
        inner = homogenous_tuple_structure_factory(type_, converter)
    else:
        inner = list_structure_factory(type_, converter)

    def structure(value: Any, actual_type: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {_describe(value)}")
        return inner(value, actual_type)

    return structure


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names_of_containers = {list: "a list", dict: "a table", type(None): "nothing"}
    return names.get(type(value)) or names_of_containers.get(type(value), type(value).__name__)


def make_strict_converter(
    rename: Rename | None = None, *, json_numbers: bool = False
) -> cattrs.Converter:
    """``rename`` maps attribute names to the keys used outside (snake_case to camelCase).

    ``json_numbers`` reads an integer as JSON Schema does: 2.0 is the integer 2. A config
    file keeps the exact types TOML gives it.
    """
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _exact(str, "a string"))
    converter.register_structure_hook(int, _integer if json_numbers else _exact(int, "an integer"))
    converter.register_structure_hook(bool, _exact(bool, "true or false"))
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook_factory(_is_array, _arrays_only)
    converter.register_structure_hook_factory(_is_literal, _literal_only)
    converter.register_structure_hook_factory(
        attrs.has, lambda type_, conv: _tables_only(type_, conv, rename)
    )
    if rename is not None:
        converter.register_unstructure_hook_factory(
            attrs.has,
            lambda type_, conv: make_dict_unstructure_fn(
                type_, conv, _cattrs_omit_if_default=True, **_renames(type_, rename)
            ),
        )
    return converter
