"""One training run = one directory holding everything needed to regenerate its numbers:
config.json (resolved config, seed, versions, data sha256), metrics.json, history.csv, curve.png,
model.pt (state dict, loadable with weights_only=True), detector.json (vocabulary, threshold),
normals.json (the normal training count profiles a bundle ships) and test_scores.parquet (every test
session's score, for the study page's PR curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import torch

from logsieve.artifacts import atomic_dir, read_json, versions, write_json
from logsieve.config import RunConfig, load_run_config
from logsieve.data.load import DataInfo, load_with_info
from logsieve.data.splits import Splits, split_sessions
from logsieve.errors import LogsieveError
from logsieve.evaluation.evaluate import evaluate_scorer, score_and_evaluate
from logsieve.evaluation.report import history_frame, plot_curve
from logsieve.evaluation.scores import write_scores
from logsieve.features.counts import normal_profiles, write_profiles
from logsieve.parsing.spec import read_spec, save_spec
from logsieve.table import require_labels
from logsieve.training.detector import Detector

NORMALS = "normals.json"  # the distinct normal training count profiles, for nearest-normal explanations


def make_splits(df: pl.DataFrame, cfg: RunConfig, source: object = "data") -> Splits:
    require_labels(df, source)
    splits = split_sessions(df, cfg.data.split, cfg.data.val_frac, cfg.data.test_frac, seed=cfg.data.split_seed)
    for name, part in zip(("train", "validation"), splits[:2], strict=True):
        require_labels(part, f"{source} ({name} split)")
    return splits


class ExternalTest(NamedTuple):
    """A --test file: sessions scored after fitting, in addition to the own test split; never fitted on."""

    sessions: pl.DataFrame
    info: DataInfo


def load_external(path: str | Path, labels: str | Path | None, data: DataInfo) -> ExternalTest:
    """Load and check a --test file before any training: labelled, and not the --data file itself."""
    sessions, info = load_with_info(path, labels, data.parse)  # raw logs: parsed as --data was
    require_labels(sessions, f"{path} (--test)", both_classes=False)
    if info.sha256 == data.sha256:
        raise LogsieveError(f"--test {path} is the --data file itself: its sessions are trained on; give another file")
    return ExternalTest(sessions, info)


def external_metrics(model: Any, external: ExternalTest, train: pl.DataFrame) -> dict[str, Any]:
    """Metrics on the --test file; *unseen* is against the training split the model was fitted on."""
    return {**evaluate_scorer(model, external.sessions, train=train), "data": external.info.record()}


def split_summary(splits: Splits) -> dict[str, dict[str, int]]:
    return {
        name: {"sessions": part.height, "anomalies": int(part["label"].sum() or 0)}
        for name, part in zip(("train", "val", "test"), splits, strict=True)
    }


def train_run(
    cfg: RunConfig,
    splits: Splits,
    out: str | Path,
    data: DataInfo,
    progress: bool = True,
    external: ExternalTest | None = None,
) -> dict[str, Any]:
    """Fit a Detector on the train/val splits, evaluate on test (and the --test file), write the run
    directory atomically. No test label is read before the model and its threshold are final."""
    det = Detector(cfg, progress=progress).fit(splits.train, splits.val)
    metrics, test_scores = score_and_evaluate(det, splits.test, train=splits.train)
    if external is not None:
        metrics["external"] = external_metrics(det, external, splits.train)
    metrics.update(
        validation=evaluate_scorer(det, splits.val),
        fit_seconds=det.fit_seconds_,
        epochs_run=len(det.history_),
        best_epoch=det.best_epoch_,
        params=det.model_.n_parameters(),
        train_rows=det.n_train_rows_,
        train_sessions=det.n_train_sessions_,
        truncated=det.truncated_,
        seconds_per_epoch=sum(r.seconds for r in det.history_) / max(len(det.history_), 1),
    )
    history = history_frame(det.history_)
    with atomic_dir(out) as tmp:
        det.save(tmp)
        write_json(tmp / "config.json", {
            "kind": "rnn",
            "name": cfg.preset,
            "config": cfg.model_dump(mode="json"),
            "seed": cfg.seed,
            "data": data.record(),
            "splits": split_summary(splits),
            "versions": versions(),
            "torch_threads": torch.get_num_threads(),
            **({"test_data": external.info.record()} if external is not None else {}),
        })  # fmt: skip
        write_json(tmp / "metrics.json", metrics)
        save_spec(tmp, data.parse)  # parse.json: how raw lines became its sessions, for export
        write_profiles(tmp / NORMALS, normal_profiles(splits.train))
        history.write_csv(tmp / "history.csv")
        write_scores(tmp, splits.test, test_scores)  # for the study page's PR curves
        plot_curve(history, tmp / "curve.png", f"{cfg.preset} (seed {cfg.seed})")
    return metrics


def evaluate_run(
    run_dir: str | Path,
    data: str | Path,
    split: str = "all",
    labels: str | Path | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Load a run directory and score ``data`` with it. ``split="test"`` rebuilds the run's own test split,
    which is only allowed on the very data it was trained on (checked by sha256)."""
    if split not in ("all", "test"):
        raise LogsieveError(f"--split must be 'all' or 'test', got {split!r}")
    detector = Detector.load(run_dir)
    if split == "test":  # the run's record says which data and split it used; read it before any work
        record_path = Path(run_dir) / "config.json"
        run_cfg = load_run_config(record_path)
        record = read_json(record_path, "run record")
        recorded = record.get("data", {}).get("sha256") if isinstance(record.get("data"), dict) else None
        if not isinstance(recorded, str):
            raise LogsieveError(
                f"{record_path}: run record is damaged (no data.sha256), so --split test cannot "
                "check the data; use --split all"
            )
    sessions, info = load_with_info(data, labels, read_spec(run_dir))  # raw logs: parsed as its data was
    train = None
    if split == "test":
        if recorded != info.sha256:
            raise LogsieveError(f"{data} is not the data {run_dir} was trained on (sha256 differs); use --split all")
        train, _, sessions = make_splits(sessions, run_cfg, data)
    require_labels(sessions, data, both_classes=False)
    metrics = evaluate_scorer(detector, sessions, train=train)
    metrics["data"] = info.record()
    metrics["split"] = split
    if out is not None:
        write_json(out, metrics)
    return metrics
