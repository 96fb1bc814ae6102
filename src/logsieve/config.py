"""Frozen configs and the preset table. Every run writes its resolved ``RunConfig`` next to its outputs."""

from __future__ import annotations

import json
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from logsieve.errors import LogsieveError


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(Frozen):
    """Embedding -> RNN/GRU/LSTM -> pooling -> optional BatchNorm1d [+ event counts] -> head."""

    cell: Literal["rnn", "gru", "lstm"] = "lstm"
    embed_dim: int = Field(32, ge=1)
    hidden_size: int = Field(64, ge=1)
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pooling: Literal["last", "mean", "max", "sum"] = "last"
    batch_norm: bool = False
    counts: Literal["none", "log", "exact"] = Field(
        "none",
        description="event counts for the head: none, log(1+count), or exact (one-hot of count up to 16, plus log)",
    )
    head_hidden: int = Field(0, ge=0, description="width of two ReLU layers before the output; 0 = linear head")

    @field_validator("counts", mode="before")
    @classmethod
    def _counts_from_bool(cls, value: object) -> object:
        """Run directories written before the count encodings existed said true/false."""
        return {True: "log", False: "none"}.get(value, value) if isinstance(value, bool) else value


class AugmentConfig(Frozen):
    """Label-preserving transforms of anomalous training sessions (see README, 'Data augmentation')."""

    enabled: bool = False
    copies: int = Field(2, ge=0, description="perturbed copies added per anomalous training session")
    swap_prob: float = Field(0.5, ge=0, le=1, description="chance to swap one adjacent pair of events")
    drop_prob: float = Field(0.3, ge=0, le=1, description="chance to drop one repeated non-indicative event")
    normal_copies: int = Field(
        0,
        ge=0,
        description="copies of each distinct normal training sequence with one adjacent pair of different events "
        "swapped",
    )


class TrainConfig(Frozen):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: decay lr to 0 over all epochs")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(20, ge=1)
    patience: int = Field(5, ge=1, description="epochs without validation improvement before stopping")
    class_weight: Literal["none", "balanced"] = "none"
    clip: Literal["none", "value", "norm"] = "none"
    clip_threshold: float = Field(1.0, gt=0)
    dedup: bool = Field(True, description="train on distinct (sequence, label) rows weighted by their count")
    bucket: bool = Field(True, description="batch sequences of similar length together")
    threshold: Literal["fixed", "tuned"] = Field("tuned", description="0.5, or the best-F1 cut on validation")
    augment: AugmentConfig = AugmentConfig()


SplitMethod = Literal["random", "chronological"]


class DataConfig(Frozen):
    """How sessions are split and cut; the one home of the split defaults (``split_sessions``, ``explore`` and
    their command-line options read theirs from ``DEFAULT_DATA``)."""

    split: SplitMethod = "random"
    split_seed: int = Field(0, description="fixed across runs so every preset and seed sees the same test set")
    val_frac: float = Field(0.1, gt=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    max_len: int = Field(512, ge=1, description="longer sessions are truncated")
    truncate: Literal["head", "tail"] = Field("head", description="keep the first or the last max_len events")


DEFAULT_DATA = DataConfig()


class RunConfig(Frozen):
    preset: str = "custom"
    seed: int = 0
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()

    @model_validator(mode="after")
    def _fractions(self) -> RunConfig:
        if self.data.val_frac + self.data.test_frac >= 1:
            raise ValueError("data.val_frac + data.test_frac must be < 1")
        return self


# --- presets: a data table (resources/presets.toml) -----------------------------------------------


def _resource_text(name: str) -> str:
    return resources.files("logsieve").joinpath("resources", name).read_text(encoding="utf-8")


@cache
def preset_table() -> dict[str, dict[str, Any]]:
    """Preset name -> {description, base, grid, model, train} rows as written in presets.toml."""
    return tomllib.loads(_resource_text("presets.toml"))["preset"]


def load_search_result(path: str | Path | None = None) -> dict[str, Any]:
    """The hyper-parameters the ``*-grid*`` presets use: a search-result JSON (shipped default or a file)."""
    try:
        text = Path(path).read_text() if path else _resource_text("grid_result.json")
        result = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise LogsieveError(f"cannot read search result {path}: {exc}") from None
    if not isinstance(result.get("best_params"), dict):
        raise LogsieveError(f"search result {path or 'grid_result.json'} has no 'best_params' object")
    return result


def split_params(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Route flat search parameters (hidden_size, lr, ...) to the model or train section."""
    model_keys, train_keys = set(ModelConfig.model_fields), set(TrainConfig.model_fields)
    out: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for key, value in params.items():
        if key in model_keys:
            out["model"][key] = value
        elif key in train_keys:
            out["train"][key] = value
        else:
            raise LogsieveError(f"unknown search parameter {key!r}; known: {sorted(model_keys | train_keys)}")
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _preset_dict(name: str, search_result: str | Path | None, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    table = preset_table()
    if name not in table:
        raise LogsieveError(f"unknown preset {name!r}; choose from: {', '.join(table)}")
    if name in seen:
        raise LogsieveError(f"preset {name!r} inherits from itself")
    row = table[name]
    cfg = _preset_dict(row["base"], search_result, (*seen, name)) if row.get("base") else {}
    if row.get("grid"):
        cfg = _merge(cfg, split_params(load_search_result(search_result)["best_params"]))
    return _merge(cfg, {k: row[k] for k in ("model", "train", "data") if k in row})


def resolve_preset(
    name: str, seed: int = 0, overrides: dict[str, Any] | None = None, search_result: str | Path | None = None
) -> RunConfig:
    """Build the full RunConfig of a preset (base chain, grid parameters, then user overrides)."""
    clash = sorted({"preset", "seed"} & set(overrides or {}))
    if clash:
        raise LogsieveError(f"--set cannot change {', '.join(clash)}; use the --preset/--seed options")
    cfg = _merge(_preset_dict(name, search_result), overrides or {})
    try:
        return RunConfig(preset=name, seed=seed, **cfg)
    except ValidationError as exc:
        raise LogsieveError(f"invalid configuration for preset {name!r}: {validation_summary(exc)}") from None


def preset_names() -> list[str]:
    return list(preset_table())


def validation_summary(exc: ValidationError) -> str:
    """pydantic's multi-line report as one line: ``model.cell: Input should be ...; train.lr: ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(config)'}: {e['msg']}" for e in exc.errors())


def load_run_config(path: str | Path) -> RunConfig:
    """The RunConfig a run recorded: a run's config.json and detector.json hold it under ``"config"`` (beside
    seed, data, vocabulary, ...); a bare RunConfig JSON file works too. Damage -> one LogsieveError line."""
    from logsieve.artifacts import read_json  # lazily: artifacts imports polars; the CLI reads config defaults

    data = read_json(path, "run config")
    if isinstance(data, dict) and "config" in data:
        data = data["config"]
    elif isinstance(data, dict) and not set(data) <= set(RunConfig.model_fields):
        raise LogsieveError(f"{path}: run config is damaged (no 'config' object)")
    if not isinstance(data, dict):
        raise LogsieveError(f"{path}: run config is damaged (expected a JSON object)")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise LogsieveError(f"{path}: run config is damaged ({validation_summary(exc)})") from None


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=0.001", "model.cell=gru"]`` -> nested dict; values parse as JSON when they can."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise LogsieveError(f"--set expects section.key=value (e.g. train.lr=0.001), got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LogsieveError(f"--set {item!r} conflicts with an earlier --set of {part!r}")
        node[leaf] = value
    return out
