"""Config values in reports: lookup by dotted key, type-tolerant comparison, display and ordering.

Values come from three places that spell them differently: resolved configs (``True``, ``0.99``),
YAML rule definitions and CSV reference tables (``"true"``, ``"0.99"``). :func:`normalize` maps all
three to one hashable form so that they compare equal; :func:`show` writes a value as YAML does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()  # a key absent from a config


def config_value(config: dict[str, Any], dotted: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; :data:`MISSING` when a key is absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def normalize(value: Any) -> Any:
    """A hashable form under which config values, YAML values and CSV strings compare equal:
    ``True == "true"``, ``1 == 1.0 == "1"``, ``None == "null"``; booleans stay apart from numbers."""
    if value is MISSING:
        return ("missing",)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in ("true", "false"):
            return ("bool", low == "true")
        if low in ("null", "none", "~"):
            return ("null",)
        try:
            return ("num", float(text))
        except ValueError:
            return ("str", text)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(normalize(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), normalize(v)) for k, v in value.items())))
    return ("str", str(value))


def nkey(values: Sequence[Any]) -> tuple[Any, ...]:
    """:func:`normalize` of each value of a key tuple (a dictionary key for cells)."""
    return tuple(normalize(v) for v in values)


def same(a: Any, b: Any) -> bool:
    """Type-tolerant equality (see :func:`normalize`)."""
    return normalize(a) == normalize(b)


def show(value: Any) -> str:
    """A config value as written in YAML: ``true``, ``0.99``, ``null``; ``not set`` for an absent key."""
    if value is MISSING:
        return "not set"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def short_key(key: str, keys: Sequence[str]) -> str:
    """The last component of a dotted key, unless another key shares it."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def is_number(value: Any) -> bool:
    return normalize(value)[0] in ("num", "bool")


def order(values: Iterable[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    """Distinct values (by :func:`normalize`), numbers sorted numerically; otherwise in the order
    of ``preferred`` (the reference table's, i.e. the paper's) first, then alphabetically."""
    distinct: dict[Any, Any] = {}
    for v in list(values) + list(preferred):  # shown as the config writes it, not as the CSV does
        distinct.setdefault(normalize(v), v)
    items = list(distinct.values())
    if all(is_number(v) for v in items):
        return sorted(items, key=lambda v: normalize(v)[1])
    rank = {normalize(v): i for i, v in enumerate(preferred)}
    return sorted(items, key=lambda v: (rank.get(normalize(v), len(rank)), show(v)))


def order_keys(found: list[tuple[Any, ...]], preferred: list[tuple[Any, ...]] = ()) -> list[tuple[Any, ...]]:
    """Distinct key tuples, ordered position by position (see :func:`order`)."""
    preferred = list(preferred)
    all_keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for key in found + preferred:
        all_keys.setdefault(nkey(key), key)
    if not all_keys:
        return [()]
    width = len(next(iter(all_keys.values())))
    ranks = []
    for i in range(width):
        ordered = order([k[i] for k in found], [k[i] for k in preferred])
        ranks.append({normalize(v): r for r, v in enumerate(ordered)})
    return sorted(all_keys.values(), key=lambda k: tuple(ranks[i][normalize(v)] for i, v in enumerate(k)))


def flatten(where: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{method: {stop_grad: false}}`` -> ``{"method.stop_grad": False}``; dotted keys stay as they are."""
    out: dict[str, Any] = {}
    for key, value in (where or {}).items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fmt(value: float | None, scale: float = 100.0) -> str:
    """A number in display units: one decimal for percentages and values >= 10, else two."""
    if value is None:
        return "-"
    if scale == 100.0 or abs(value) >= 10:
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{value:.2f}"


def fmt_p(p: float | None) -> str:
    """A p-value: ``0.031``, ``0.0004``, ``<1e-6``."""
    if p is None:
        return "-"
    if p < 1e-6:
        return "<1e-6"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """``p = 0.031`` or ``p < 1e-6``."""
    return "p < 1e-6" if p < 1e-6 else f"p = {fmt_p(p)}"


def seed_label(seeds: Sequence[str]) -> str:
    """``0-2`` for consecutive integer seeds, else ``0, 3, 7``."""
    try:
        ints = [int(s) for s in seeds]
    except ValueError:
        return ", ".join(seeds)
    if len(ints) > 2 and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}-{ints[-1]}"
    return ", ".join(str(i) for i in ints)
