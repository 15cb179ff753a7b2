"""A small typed reader for the JSON the app reads back from files (checkpoint sidecars, trajectory
meta): types, ranges and required keys, checked before any of it is used.

A reader is a function `(value, where) -> value` that returns the value it accepts (numbers as
float or int) and raises `SchemaError` naming the field by its path, e.g.
"meta.coeffs[3].alpha_bar_t: expected a number in [0, 1], got 1.5". Callers put the file's name
in front, so every refusal is one line that names the file and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

Reader = Callable[[Any, str], Any]

# JSON larger than this is refused before it is parsed (nesting too deep, while it is parsed)
MAX_JSON_CHARS = 64 * 1024 * 1024
MAX_TEXT_CHARS = 100_000


class SchemaError(ValueError):
    """A value of the wrong type or out of range; the message starts with where it was found."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


def _shown(value: Any) -> str:
    """The offending value, short enough for one line."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def parse_json(text: str, where: str) -> Any:
    """json.loads, refusing a document too large or nested too deep to be one of ours."""
    if len(text) > MAX_JSON_CHARS:
        raise SchemaError(where, f"{len(text):,} characters of JSON is more than any file of ours holds")
    try:
        return json.loads(text)
    except RecursionError:  # json's parser counts its own depth and stops at Python's recursion limit
        raise SchemaError(where, "JSON nested too deep to be one of ours") from None
    except ValueError as exc:  # JSONDecodeError, and text that is not valid Unicode
        raise SchemaError(where, f"not valid JSON ({str(exc).splitlines()[0]})") from None


def number(
    low: float | None = None, high: float | None = None, *, integer: bool = False, allow_infinite: bool = False
) -> Reader:
    """A finite number (an integer if asked; ±infinity if allowed) within [low, high]; true and
    false are not numbers."""
    noun = "an integer" if integer else "a number"
    if low is not None and high is not None:
        wanted = f"{noun} in [{low:g}, {high:g}]"
    elif low is not None or high is not None:
        wanted = f"{noun} >= {low:g}" if low is not None else f"{noun} <= {high:g}"
    else:
        wanted = noun if allow_infinite else f"a finite {noun.split()[1]}"

    def read(value: Any, where: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(where, f"expected {wanted}, got {_shown(value)}")
        if integer and isinstance(value, float):
            if not value.is_integer():
                raise SchemaError(where, f"expected {wanted}, got {_shown(value)}")
            value = int(value)
        if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not allow_infinite)):
            raise SchemaError(where, f"expected {wanted}, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SchemaError(where, f"expected {wanted}, got {_shown(value)}")
        return value

    return read


def text(choices: tuple[str, ...] | None = None, max_chars: int = MAX_TEXT_CHARS) -> Reader:
    def read(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise SchemaError(where, f"expected text, got {_shown(value)}")
        if choices is not None and value not in choices:
            raise SchemaError(where, f"expected one of {', '.join(choices)}, got {_shown(value)}")
        if len(value) > max_chars:
            raise SchemaError(where, f"{len(value):,} characters is more than {max_chars:,}")
        return value

    return read


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(where, f"expected true or false, got {_shown(value)}")
    return value


def anything(value: Any, where: str) -> Any:
    """Any JSON value (already bounded in size and depth by `parse_json`)."""
    return value


def optional(reader: Reader) -> Reader:
    """`reader`'s value, or null."""
    return lambda value, where: None if value is None else reader(value, where)


def list_of(item: Reader, max_length: int, min_length: int = 0, length: int | None = None) -> Reader:
    def read(value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise SchemaError(where, f"expected a list, got {_shown(value)}")
        if length is not None and len(value) != length:
            raise SchemaError(where, f"expected {length} entries, got {len(value)}")
        if not min_length <= len(value) <= max_length:
            raise SchemaError(where, f"expected {min_length} to {max_length:,} entries, got {len(value):,}")
        return [item(entry, f"{where}[{index}]") for index, entry in enumerate(value)]

    return read


def record(fields: Mapping[str, Reader], required: tuple[str, ...] = (), others: Reader | None = anything) -> Reader:
    """A JSON object: the `required` keys must be there; every key in `fields` that is there is read
    with its reader; any other key with `others` (None: other keys are refused)."""

    def read(value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise SchemaError(where, f"expected an object, got {_shown(value)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise SchemaError(where, f"lacks {', '.join(missing)}")
        result = {}
        for key, entry in value.items():
            reader = fields.get(key, others)
            if reader is None:
                raise SchemaError(where, f"unknown key {_shown(key)}; expected {', '.join(fields)}")
            result[key] = reader(entry, f"{where}.{key}")
        return result

    return read
