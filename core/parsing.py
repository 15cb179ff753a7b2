"""Parsing the number lists people type, shared by the CLI's flags and the app's fields."""

from __future__ import annotations


def parse_int_list(text: str, max_values: int = 10_000) -> list[int]:
    """ "0,2,4", "0-9" or "0-4, 7" -> a list of ints; raises ValueError with a one-line reason,
    also for a list longer than `max_values` (checked before a range is spelled out)."""
    values: list[int] = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            if dash and low.strip():
                start, end = int(low), int(high)
                if end < start:
                    raise ValueError
                added = range(start, end + 1)
            else:
                added = range(int(part), int(part) + 1)
        except ValueError:
            raise ValueError(f"expected integers like 0,2,4 or 0-9, got {shorten(text)!r}") from None
        if len(values) + len(added) > max_values:
            raise ValueError(f"at most {max_values:,} numbers in one list, got {shorten(text)!r}")
        values.extend(added)
    return values


def shorten(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_int_list(values: list[int]) -> str:
    """[1, 2, 3, 5, 10] -> "1-3, 5, 10": the inverse of parse_int_list, runs of three or more as ranges."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        end = index
        while end + 1 < len(values) and values[end + 1] == values[end] + 1:
            end += 1
        if end - index >= 2:
            parts.append(f"{values[index]}-{values[end]}")
        else:
            parts.extend(str(value) for value in values[index : end + 1])
        index = end + 1
    return ", ".join(parts)


def parse_float_list(text: str) -> list[float]:
    """ "0, 5, 10" -> [0.0, 5.0, 10.0]; raises ValueError with a one-line reason."""
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected numbers like 0, 5, 10, got {text!r}") from None
