"""``options``: the runtime and sampling settings of a request (ollama-wire.md §3), as
``api.Options.FromMap`` reads them.

Defaults are ``api.DefaultOptions`` with the model's Modelfile ``PARAMETER`` lines on top, then the
request's options. An unknown option is ignored (Ollama only logs it); a known one of the wrong
JSON type fails with ``option "temperature" must be of type float32`` (Go names the kind). Ollama
reports that failure from its scheduler, whose catch-all answers **500** (``handleScheduleError``);
the emulator does the same. Go walks the map in random order, the emulator in the body's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botticelli.emulator.ollama import wire
from botticelli.emulator.ollama.gojson import go_quote

#: The server's default context without a large GPU (ollama-wire.md §3; Ollama picks 4096 below
#: 23 GiB of VRAM).
DEFAULT_NUM_CTX = 4096

_INT = "integer"
_FLOAT = "float32"
_BOOL = "boolean"
_STRINGS = "array"

#: option -> its kind in ``api.Options`` (``Runner`` fields included).
KINDS: dict[str, str] = {
    "num_ctx": _INT,
    "num_batch": _INT,
    "num_gpu": _INT,
    "main_gpu": _INT,
    "use_mmap": _BOOL,
    "num_thread": _INT,
    "num_keep": _INT,
    "seed": _INT,
    "num_predict": _INT,
    "top_k": _INT,
    "top_p": _FLOAT,
    "min_p": _FLOAT,
    "typical_p": _FLOAT,
    "repeat_last_n": _INT,
    "temperature": _FLOAT,
    "repeat_penalty": _FLOAT,
    "presence_penalty": _FLOAT,
    "frequency_penalty": _FLOAT,
    "stop": _STRINGS,
}

DEFAULTS: dict[str, Any] = {
    "num_ctx": DEFAULT_NUM_CTX,
    "num_batch": 512,
    "num_gpu": -1,
    "num_thread": 0,
    "num_keep": 4,
    "seed": -1,
    "num_predict": -1,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "temperature": 0.8,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "stop": [],
}


@dataclass(frozen=True, slots=True)
class Options:
    """What generation reads; ``seed`` -1 means "pick one", ``num_predict`` <= 0 "no limit"."""

    num_ctx: int
    num_predict: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    stop: tuple[str, ...]


def _coerce(key: str, kind: str, value: Any) -> Any:
    """One ``FromMap`` assignment; raises the 500 ``WireError`` for a value of the wrong type."""
    if kind == _INT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)  # JSON numbers are float64 in Go; the conversion truncates
    elif kind == _FLOAT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind == _BOOL:
        if isinstance(value, bool):
            return value
    elif isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return list(value)
        raise wire.error(500, f"option {go_quote(key)} must be of an array of strings")
    raise wire.error(500, f"option {go_quote(key)} must be of type {kind}")


def resolve(model_options: Mapping[str, Any], request_options: Mapping[str, Any] | None) -> Options:
    """Defaults, then the model's parameters, then the request's; raises ``WireError`` (500)."""
    values = dict(DEFAULTS)
    for source in (model_options, request_options or {}):
        for key, value in source.items():
            kind = KINDS.get(key)
            if kind is None or value is None:
                continue
            values[key] = _coerce(key, kind, value)
    return Options(
        num_ctx=values["num_ctx"] if values["num_ctx"] > 0 else DEFAULT_NUM_CTX,
        num_predict=values["num_predict"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        top_k=values["top_k"],
        seed=values["seed"],
        stop=tuple(values["stop"]),
    )
