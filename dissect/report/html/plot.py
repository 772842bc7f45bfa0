"""Building blocks of the plots: :class:`Figure` (plotly's JSON figure as a plain dict), traces, the
colours of layers and directions, and plotly's package data (plotly.js and its templates)."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np

LAYER_COLORS = {
    "tcp": "#4c78a8",
    "tls": "#72b7b2",
    "websocket": "#f58518",
    "engineio": "#54a24b",
    "socketio": "#b279a2",
}
DIR_COLORS = {"c2s": "#4c78a8", "s2c": "#e45756"}


class Figure:
    """A plotly figure as the plain ``{"data", "layout"}`` dict that plotly.js draws.

    plotly's Python graph objects would validate every property (and load the template through
    them): more time and about 40 MB more memory than the whole report page needs.
    """

    __slots__ = ("data", "layout")

    def __init__(self, layout: dict[str, Any]) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}
        _merge(self.layout, layout)

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def update_layout(self, **props: Any) -> None:
        _merge(self.layout, props)

    def to_dict(self) -> dict[str, Any]:
        layout = dict(self.layout)
        for key, axis in layout.items():
            # plotly.js 3 takes an axis title only as {"text": ...}
            if key[1:5] == "axis" and isinstance(axis, dict) and isinstance(axis.get("title"), str):
                layout[key] = {**axis, "title": {"text": axis["title"]}}
        return {"data": _plain(self.data), "layout": _plain(layout)}


def trace(kind: str, **props: Any) -> dict[str, Any]:
    """A plotly trace of type ``kind`` (bar, box, scatter) with ``props``."""
    return {"type": kind, **props}


def direction_bars(fig: Figure, categories: list[str], counts: dict[str, list[int]],
                   horizontal: bool = False) -> None:
    """One bar trace per direction (in its colour) with any count, over ``categories``."""
    for direction, values in counts.items():
        if any(values):
            cells = {"y": categories, "x": values, "orientation": "h"} if horizontal else \
                {"x": categories, "y": values}
            fig.add_trace(trace("bar", **cells, name=direction, marker={"color": DIR_COLORS[direction]}))


def _merge(into: dict[str, Any], props: dict[str, Any]) -> None:
    """Nested dicts are merged, as plotly's ``update_layout`` does; other values replaced."""
    for k, v in props.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict) and k != "template":
            into[k] = dict(into[k])
            _merge(into[k], v)
        else:
            into[k] = v


def _plain(v: Any) -> Any:
    """JSON values: NaN and infinities as null, numpy scalars as Python numbers."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def plotly_file(name: str) -> bytes | None:
    """A file of plotly's package data (plotly.js, templates), or None without plotly."""
    import importlib.resources

    try:
        import plotly  # noqa: F401 - only its package data is used
    except ImportError:
        return None
    try:
        return (importlib.resources.files("plotly") / "package_data" / name).read_bytes()
    except OSError:
        return None


@functools.lru_cache(maxsize=4)
def template(name: str) -> dict[str, Any]:
    """A plotly layout template by name (``plotly_white``); empty without plotly."""
    text = plotly_file(f"templates/{name}.json")
    return json.loads(text) if text else {}

