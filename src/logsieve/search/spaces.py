"""Search spaces: what a hyper-parameter search may vary, as data (built-in, or a TOML/YAML file).

A space maps flat parameter names (those of ``split_params``: hidden_size, lr, ...) to either a list of
values (categorical; a space of lists only can be searched exhaustively with optuna's GridSampler) or a
range ``{low, high, log}`` (TPE only). Everything is validated up front so a bad space fails before any
training or any file is written.

    sampler = "grid"                       # or "tpe"
    [params]
    hidden_size = [32, 64]
    lr = { low = 1e-4, high = 3e-2, log = true }
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import optuna

from logsieve.config import RunConfig, resolve_preset, split_params
from logsieve.errors import LogsieveError

Value = str | int | float | bool


@dataclass(frozen=True)
class Range:
    """A numeric interval; ints stay ints (suggest_int), anything else is a float."""

    low: float
    high: float
    log: bool = False

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


@dataclass(frozen=True)
class Space:
    name: str
    params: dict[str, list[Value] | Range]
    sampler: Literal["grid", "tpe"] = "grid"
    fixed: dict[str, Value] = field(default_factory=dict)  # applied to every trial, not searched

    @property
    def size(self) -> int | None:
        """Number of grid points, or None when a range makes the space continuous."""
        sizes = [len(v) for v in self.params.values() if not isinstance(v, Range)]
        return math.prod(sizes) if len(sizes) == len(self.params) else None

    def grid(self) -> dict[str, list[Value]]:
        return {k: list(v) for k, v in self.params.items() if not isinstance(v, Range)}

    def suggest(self, trial: optuna.Trial) -> dict[str, Value]:
        """Draw one configuration through ``trial`` (so samplers and storage see every choice)."""
        out: dict[str, Value] = {}
        for name, spec in self.params.items():
            if not isinstance(spec, Range):
                out[name] = cast(Value, trial.suggest_categorical(name, spec))  # one of spec's values, never None
            elif spec.is_int:
                out[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
            else:
                out[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        return {**self.fixed, **out}

    def to_dict(self) -> dict[str, Any]:
        params = {k: v.__dict__ if isinstance(v, Range) else v for k, v in self.params.items()}
        return {"name": self.name, "sampler": self.sampler, "params": params, "fixed": self.fixed}


# The built-in grid: two values of each of the eight dimensions of the original study's grid, 2**8 = 256
# points (a third learning rate or hidden size would make 384 and not fit 15 minutes on 2 cores).
BUILTIN: dict[str, dict[str, Any]] = {
    "grid": {
        "sampler": "grid",
        "params": {
            "embed_dim": [16, 32],
            "hidden_size": [32, 64],
            "num_layers": [1, 2],
            "bidirectional": [False, True],
            "dropout": [0.0, 0.2],
            "lr": [0.003, 0.01],
            "batch_size": [64, 128],
            "pooling": ["last", "max"],
        },
    },
    "wide": {
        "sampler": "tpe",
        "params": {
            "cell": ["lstm", "gru"],
            "embed_dim": [8, 16, 32, 64],
            "hidden_size": {"low": 16, "high": 256, "log": True},
            "num_layers": [1, 2, 3],
            "bidirectional": [False, True],
            "dropout": {"low": 0.0, "high": 0.5},
            "lr": {"low": 3e-4, "high": 3e-2, "log": True},
            "batch_size": [32, 64, 128, 256],
            "pooling": ["last", "mean", "max"],
            "weight_decay": [0.0, 1e-5, 1e-4],
        },
    },
    "tiny": {"sampler": "grid", "params": {"hidden_size": [8, 16], "lr": [0.003, 0.01]}},
}


def load_space(spec: str | Path, preset: str = "improved") -> Space:
    """A built-in space by name, or a ``.toml``/``.yaml`` file; validated against ``preset``'s config."""
    resolve_preset(preset)  # an unknown preset is its own error, not a bad value of the space
    if str(spec) in BUILTIN:
        return _build(str(spec), BUILTIN[str(spec)], preset)
    path = Path(spec)
    if not path.is_file():
        raise LogsieveError(f"unknown space {str(spec)!r}: not a file, and not one of {', '.join(BUILTIN)}")
    return _build(path.stem, _read(path), preset)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise LogsieveError(f"{path}: YAML spaces need PyYAML (pip install pyyaml), or write TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LogsieveError(f"{path}: invalid YAML: {exc}") from None
    elif path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LogsieveError(f"{path}: invalid TOML: {exc}") from None
    else:
        raise LogsieveError(f"{path}: a space file must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise LogsieveError(f"{path}: expected a table with a [params] section")
    return data


def _build(name: str, data: dict[str, Any], preset: str) -> Space:
    unknown = set(data) - {"sampler", "params", "fixed"}
    if unknown:
        raise LogsieveError(f"space {name!r}: unknown key(s) {sorted(unknown)}; use sampler, params, fixed")
    raw, fixed = data.get("params") or {}, dict(data.get("fixed") or {})
    if not isinstance(raw, dict) or not raw:
        raise LogsieveError(f"space {name!r} is empty: give at least one parameter under [params]")
    split_params({**raw, **fixed})  # unknown parameter names fail here, naming the known ones
    if data_keys := sorted({"dedup", "augment"} & {*raw, *fixed}):
        raise LogsieveError(f"space {name!r}: {data_keys} change the training rows, which all trials share; "
                            "set them with --set train.KEY=VALUE instead")  # fmt: skip
    params: dict[str, list[Value] | Range] = {}
    for key, spec in raw.items():
        if isinstance(spec, dict):
            if set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
                raise LogsieveError(f"space {name!r}: {key} range needs low and high (and optional log)")
            params[key] = span = Range(spec["low"], spec["high"], bool(spec.get("log", False)))
            if not span.low < span.high:
                raise LogsieveError(f"space {name!r}: {key} range needs low < high, got {spec}")
            _check(name, preset, fixed, key, [spec["low"], spec["high"]])
        elif isinstance(spec, list) and spec:
            if len(set(map(repr, spec))) != len(spec):
                raise LogsieveError(f"space {name!r}: {key} lists a value twice: {spec}")
            _check(name, preset, fixed, key, spec)
            params[key] = list(spec)
        else:
            raise LogsieveError(f"space {name!r}: {key} must be a non-empty list of values or a range, got {spec!r}")
    sampler = data.get("sampler", "grid" if all(isinstance(v, list) for v in params.values()) else "tpe")
    if sampler not in ("grid", "tpe"):
        raise LogsieveError(f"space {name!r}: sampler must be 'grid' or 'tpe', got {sampler!r}")
    if sampler == "grid" and any(isinstance(v, Range) for v in params.values()):
        raise LogsieveError(f'space {name!r}: a grid needs lists of values; ranges need sampler = "tpe"')
    return Space(name, params, sampler, fixed)


def _check(name: str, preset: str, fixed: dict[str, Any], key: str, values: list[Any]) -> None:
    """Each value must make a valid config on its own (pydantic's bounds and choices)."""
    for value in values:
        try:
            resolve_preset(preset, overrides=split_params({**fixed, key: value}))
        except LogsieveError as exc:
            raise LogsieveError(f"space {name!r}: {key}={value!r} is not a valid value ({exc})") from None


def base_config(settings: Any, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The preset every trial starts from, with the search's epoch budget (``--set`` still wins)."""
    user = overrides or {}
    budget = {"epochs": settings.epochs, "patience": settings.patience, **user.get("train", {})}
    return resolve_preset(settings.preset, settings.seed, {**user, "train": budget})


def trial_config(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    """The base config with one point's flat parameters routed to model/train."""
    cfg, routed = base.model_dump(), split_params(params)
    cfg["model"].update(routed["model"])
    cfg["train"].update(routed["train"])
    return RunConfig.model_validate(cfg)
