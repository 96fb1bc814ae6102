"""A model bundle: one directory holding a trained detector and everything needed to score new logs with it.

``export_bundle`` turns any run directory (an RNN preset or a count baseline) into a bundle; ``load_bundle``
gives back the in-memory ``Bundle`` that scoring, ``watch`` and ``serve`` use. No pickle anywhere: RNN
weights are safetensors, baselines a skops file loaded against an explicit trusted-types list, the rest
JSON. Files are checked against the manifest's sha256, and a self-check (scores of stored probe sessions,
recorded at export) guards against a library upgrade that silently changes what the model computes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
from pydantic import ValidationError

from logsieve.artifacts import atomic_dir, atomic_write_text, read_json, write_json
from logsieve.config import RunConfig, validation_summary
from logsieve.errors import LogsieveError
from logsieve.features.counts import PROFILE_SCHEMA, normal_profiles, read_profiles, write_profiles
from logsieve.models.baselines import BASELINES, ESTIMATOR, STATE, CountBaseline
from logsieve.models.deeplog import STATE as DEEPLOG_STATE
from logsieve.models.deeplog import WEIGHTS as DEEPLOG_WEIGHTS
from logsieve.models.deeplog import DeepLog
from logsieve.parsing.spec import ParseSpec, read_spec
from logsieve.serving.manifest import (
    MANIFEST,
    Manifest,
    TemplateSource,
    Truncation,
    environment,
    file_entry,
    format_version,
    read_manifest,
    verify_files,
    version_drift,
)
from logsieve.training.detector import Detector
from logsieve.training.runs import NORMALS

__all__ = ["Bundle", "BundleWarning", "check_bundle_target", "export_bundle", "load_bundle", "normal_profiles"]

WEIGHTS = "model.safetensors"
MINER = "miner.json"
CHECK = "self_check.json"
PROBE_LIMIT = 256  # most common normal profiles used as self-check probes (plus one per vocabulary event)
TOLERANCE = 1e-5  # float32 RNN scores may move in the 7th digit across CPUs; a real change is far larger
LIBRARIES = {"rnn": ("torch", "safetensors"), "baseline": ("scikit-learn", "skops"),
             "deeplog": ("torch", "safetensors")}  # fmt: skip
DEEPLOG_FILES = (DEEPLOG_WEIGHTS, DEEPLOG_STATE)  # what DeepLog.save writes; the bundle keeps both as they are


class BundleWarning(UserWarning):
    """A bundle loads, but with something to know (e.g. made under another torch/scikit-learn version)."""


class SessionScorer(Protocol):
    """What every detector kind offers (``Detector``, ``CountBaseline``, ``DeepLog``)."""

    threshold_: float

    def score(self, df: pl.DataFrame) -> np.ndarray: ...


@dataclass
class Bundle:
    """A fitted detector plus what scoring new logs needs.

    ``templates`` says how raw lines become events: ``"hdfs"`` (the shipped E1..E30 set) or ``"miner"``
    (then ``miner_state`` is a saved ``TemplateMiner`` as a dict). ``normal_profiles`` holds the distinct
    event-count vectors of the normal training sessions (columns ``events`` list[str] sorted, ``sessions``
    int: how many training sessions have it) for nearest-normal explanations; it may be empty.
    """

    model: SessionScorer
    kind: str  # "rnn" or a baseline kind ("decision-tree", ...)
    name: str  # preset or baseline name
    config: dict[str, Any]
    vocabulary: list[str]  # events seen in training
    templates: str = "hdfs"
    miner_state: dict[str, Any] | None = None
    normal_profiles: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"events": pl.List(pl.String), "sessions": pl.Int64})
    )
    metrics: dict[str, Any] = field(default_factory=dict)  # {"validation": {...}, "test": {...}}
    data: dict[str, Any] = field(default_factory=dict)  # training data fingerprint
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)  # everything else recorded at export (versions, ...)
    parse: ParseSpec | None = None  # how raw lines become sessions (with the miner state); None: HDFS blk_ sessions

    @property
    def threshold(self) -> float:
        return float(self.model.threshold_)


# --- export ----------------------------------------------------------------------------------------


def export_bundle(run_dir: str | Path, out: str | Path, templates: str | Path | None = None) -> Path:
    """Write the bundle of ``run_dir`` (from ``train`` or ``study``) to ``out``, atomically.

    A run whose data came from a non-HDFS format (or mined templates) records how (``parse.json``), and the
    bundle takes that over, miner state included. Otherwise ``templates`` is ``"hdfs"`` (the default: the
    shipped template set) or the path of a saved miner state (``logsieve parse --save-miner``). The written
    bundle is loaded back before it replaces ``out``, so a bundle that exists is one that loads.
    """
    run_dir, out = Path(run_dir), Path(out)
    kind, model, record = _read_run(run_dir)
    vocabulary = list(model.vocab_.events_)
    spec = read_spec(run_dir)
    source, miner_bytes = _template_source(templates, vocabulary, spec, run_dir)
    check_bundle_target(out, run_dir)
    profiles = (
        read_profiles(run_dir / NORMALS) if (run_dir / NORMALS).is_file() else pl.DataFrame(schema=PROFILE_SCHEMA)
    )
    probes = _probes(profiles, vocabulary)
    metrics = read_json(run_dir / "metrics.json", "run metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("validation"), dict):
        raise LogsieveError(f"{run_dir / 'metrics.json'}: run metrics are damaged (no validation metrics)")
    family = _family(kind)
    recorded = record.get("versions")
    trained_with = {k: str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}
    with atomic_dir(out) as tmp:
        if isinstance(model, Detector):
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous() for k, v in model.model_.state_dict().items()}, tmp / WEIGHTS)
            weights: tuple[str, ...] = (WEIGHTS,)
        elif isinstance(model, DeepLog):
            for file in DEEPLOG_FILES:
                shutil.copyfile(run_dir / file, tmp / file)
            weights = DEEPLOG_FILES
        else:
            shutil.copyfile(run_dir / ESTIMATOR, tmp / ESTIMATOR)
            shutil.copyfile(run_dir / STATE, tmp / STATE)
            weights = (ESTIMATOR, STATE)
        write_profiles(tmp / NORMALS, profiles)
        scores = _score_probes(model, probes).tolist()
        rows = ",\n".join(json.dumps({"events": p, "score": s}) for p, s in zip(probes, scores, strict=True))
        atomic_write_text(tmp / CHECK, f'{{"probes": [\n{rows}\n]}}\n')
        if miner_bytes is not None:
            (tmp / MINER).write_bytes(miner_bytes)
        names = [*weights, NORMALS, CHECK, *([MINER] if miner_bytes is not None else [])]
        name, seed = (model.config.preset, model.config.seed) if isinstance(model, Detector) else (kind, model.seed)
        data = record["data"] if isinstance(record.get("data"), dict) else {}
        try:
            manifest = Manifest(
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                kind=kind, name=name, seed=seed, config=record["config"], vocabulary=vocabulary,
                threshold=float(model.threshold_), templates=source, truncation=_truncation(model),
                metrics={"validation": metrics["validation"], "test": _without(metrics, "validation")},
                data={**data, "splits": record.get("splits")}, versions=environment(), trained_with=trained_with,
                files={file: file_entry(tmp / file) for file in names},
                parse=None if spec is None else spec.definition(), format_version=format_version(spec),
            )  # fmt: skip
        except ValidationError as exc:
            raise LogsieveError(f"{run_dir}: run record is damaged ({validation_summary(exc)})") from None
        write_json(tmp / MANIFEST, manifest.model_dump(mode="json", exclude=None if spec else {"parse"}))  # v1 as ever
        drift = [f"{lib} {trained_with[lib]} -> {environment().get(lib)}" for lib in LIBRARIES[family]
                 if lib in trained_with and trained_with[lib] != environment().get(lib)]  # fmt: skip
        if drift:
            warnings.warn(f"{run_dir}: trained under other library versions ({'; '.join(drift)}); the bundle "
                          "records the scores of this environment", BundleWarning, stacklevel=2)  # fmt: skip
        load_bundle(tmp)
    return out


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _family(kind: str) -> str:
    """Which files and libraries a bundle of ``kind`` has: "rnn", "deeplog" or "baseline" (any count kind)."""
    return kind if kind in ("rnn", "deeplog") else "baseline"


def _read_run(run_dir: Path) -> tuple[str, Detector | CountBaseline | DeepLog, dict[str, Any]]:
    """(kind, fitted model, config.json record) of a run directory: RNN, count baseline or DeepLog."""
    if (run_dir / MANIFEST).is_file():
        raise LogsieveError(f"{run_dir}: already a bundle, not a run directory")
    if not (run_dir / "config.json").is_file():
        raise LogsieveError(f"{run_dir}: not a run directory (no config.json; train or study write them)")
    record = read_json(run_dir / "config.json", "run record")
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise LogsieveError(f"{run_dir / 'config.json'}: run record is damaged (no config object)")
    if (run_dir / DEEPLOG_STATE).is_file():
        return DeepLog.kind, DeepLog.load(run_dir), record
    if (run_dir / STATE).is_file():
        baseline = CountBaseline.load(run_dir)
        return baseline.kind, baseline, record
    return "rnn", Detector.load(run_dir), record


def _template_source(
    templates: str | Path | None, vocabulary: list[str], spec: ParseSpec | None = None, run_dir: Path | None = None
) -> tuple[TemplateSource, bytes | None]:
    """The manifest's record of how lines become events (the run's parse spec, else ``templates``) and the miner
    state file's bytes, checked against the model's vocabulary."""
    from logsieve.parsing.mining import UNKNOWN, TemplateMiner

    miner, data, what = None, None, str(templates or "hdfs")
    if spec is not None:
        _check_templates_option(templates, spec, run_dir)
        what = f"of its parse spec ({spec.describe()})"
        if spec.templates == "miner":
            miner = TemplateMiner.from_state(spec.miner, f"{run_dir}: parse spec")
            data = json.dumps(spec.miner, ensure_ascii=False).encode()
    elif what != "hdfs":
        path = Path(what)
        if not path.is_file():
            raise LogsieveError(f"--templates must be 'hdfs' or a saved miner JSON file; {path} not found")
        miner, data = TemplateMiner.load(path), path.read_bytes()
    if miner is None or data is None:
        pairs = _hdfs_templates()
        ids = {i for i, _ in pairs}
        source = TemplateSource(source="hdfs", sha256=_pairs_sha256(pairs), count=len(pairs), templates=pairs)
    else:
        ids = set(miner.templates_["id"].to_list()) | {UNKNOWN}
        source = TemplateSource(source="miner", sha256=hashlib.sha256(data).hexdigest(),
                                count=len(miner.clusters_), file=MINER)  # fmt: skip
    foreign = sorted(set(vocabulary) - ids)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise LogsieveError(f"the model knows events the templates {what} never produce ({shown}); pass "
                            "the miner state its training data was parsed with (--templates MINER.json)")  # fmt: skip
    return source, data


def _check_templates_option(templates: str | Path | None, spec: ParseSpec, run_dir: Path | None) -> None:
    """``--templates`` beside a run that records its parse spec may only name that same template source."""
    if templates is None:
        return
    if str(templates) == "hdfs":
        same = spec.templates == "hdfs"
    else:
        path = Path(templates)
        same = spec.templates == "miner" and path.is_file() and read_json(path, "template miner state") == spec.miner
    if not same:
        raise LogsieveError(f"{run_dir}: its data was parsed as {spec.describe()} (its parse.json), and --templates "
                            f"{templates} is not that template source; drop --templates")  # fmt: skip


def _hdfs_templates() -> list[tuple[str, str]]:
    from logsieve.parsing.templates import load_templates

    return load_templates("hdfs")


def _pairs_sha256(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps([list(p) for p in pairs]).encode()).hexdigest()


def check_bundle_target(out: str | Path, run_dir: str | Path | None = None) -> None:
    """``atomic_dir`` replaces ``out`` wholesale: only ever replace an earlier bundle (or nothing). Public so
    ``study --export`` can check before training."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LogsieveError(f"{out}: exists and is not a directory")
    if run_dir is not None and out.resolve() == Path(run_dir).resolve():
        raise LogsieveError(f"{out}: the bundle cannot replace the run directory it comes from")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise LogsieveError(f"{out}: exists and is not a bundle; refusing to replace it (choose another --out)")


def _truncation(model: Detector | CountBaseline | DeepLog) -> Truncation | None:
    if isinstance(model, Detector):
        return Truncation(max_len=model.config.data.max_len, truncate=model.config.data.truncate)
    return None


def _probes(profiles: pl.DataFrame, vocabulary: list[str]) -> list[list[str]]:
    """Self-check sessions: the most common normal profiles, and each known event on its own."""
    return [*profiles["events"].head(PROBE_LIMIT).to_list(), *([e] for e in vocabulary)]


def _score_probes(model: SessionScorer, probes: list[list[str]]) -> np.ndarray:
    if not probes:
        return np.zeros(0)
    ids = [f"probe-{i}" for i in range(len(probes))]
    df = pl.DataFrame({"session_id": ids, "events": probes, "label": [0] * len(probes)},
                      schema={"session_id": pl.String, "events": pl.List(pl.String), "label": pl.Int8})  # fmt: skip
    return np.asarray(model.score(df), dtype=np.float64)


# --- load ------------------------------------------------------------------------------------------


def load_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle: format version, every file's size and sha256, the model, and the self-check.

    Anything wrong is one ``LogsieveError`` line. A bundle exported under another torch (RNN) or
    scikit-learn (baseline) version loads with a ``BundleWarning`` when its self-check scores still match,
    and is refused when they do not.
    """
    path = Path(path)
    manifest = read_manifest(path)
    family = _family(manifest.kind)
    if family == "baseline" and manifest.kind not in BASELINES:
        raise LogsieveError(f"{path / MANIFEST}: unknown model kind {manifest.kind!r}")
    weights = {"rnn": (WEIGHTS,), "deeplog": DEEPLOG_FILES}.get(family, (ESTIMATOR, STATE))
    verify_files(path, manifest, (*weights, NORMALS, CHECK))
    drift = version_drift(manifest, LIBRARIES[family])
    try:
        if family == "rnn":
            model: Detector | CountBaseline | DeepLog = _rnn(path, manifest)
        else:
            model = DeepLog.load(path) if family == "deeplog" else CountBaseline.load(path)
    except LogsieveError as exc:
        if drift:
            raise LogsieveError(f"{exc} (bundle made with {'; '.join(drift)})") from None
        raise
    if list(model.vocab_.events_) != manifest.vocabulary or float(model.threshold_) != manifest.threshold:
        raise LogsieveError(f"{path}: the model's vocabulary or threshold disagrees with {MANIFEST}")
    _self_check(path, model, drift)
    miner_state = None
    if manifest.templates.source == "miner":
        if manifest.templates.file not in manifest.files:
            raise LogsieveError(f"{path / MANIFEST}: bundle manifest is damaged (miner state file not listed)")
        miner_state = read_json(path / manifest.templates.file, "template miner state")
    else:
        _check_hdfs_templates(path, manifest.templates)
    return Bundle(
        model=model, kind=manifest.kind, name=manifest.name, config=manifest.config,
        vocabulary=list(manifest.vocabulary), templates=manifest.templates.source, miner_state=miner_state,
        normal_profiles=read_profiles(path / NORMALS), metrics=manifest.metrics, data=manifest.data, path=path,
        manifest=manifest.model_dump(mode="json"),
        parse=None if manifest.parse is None else manifest.parse.with_miner(miner_state),
    )  # fmt: skip


def _rnn(path: Path, manifest: Manifest) -> Detector:
    """A Detector from the manifest (config, vocabulary, threshold) and the safetensors weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = RunConfig.model_validate(manifest.config)
    except ValidationError as exc:
        raise LogsieveError(f"{path / MANIFEST}: model config is damaged ({validation_summary(exc)})") from None
    try:
        weights = load_file(path / WEIGHTS)
    except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise LogsieveError(f"{path / WEIGHTS}: damaged ({why})") from None
    return Detector.from_state(config, manifest.vocabulary, manifest.threshold, weights, path / WEIGHTS, MANIFEST)


def _self_check(path: Path, model: SessionScorer, drift: list[str]) -> None:
    """Score the stored probes: refuse a model that no longer computes what it did at export."""
    check = read_json(path / CHECK, "self-check")
    try:
        probes = [row["events"] for row in check["probes"]]
        expected = np.asarray([row["score"] for row in check["probes"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise LogsieveError(f"{path / CHECK}: self-check is damaged ({exc})") from None
    try:
        scores = _score_probes(model, probes)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise LogsieveError(f"{path / CHECK}: self-check is damaged ({type(exc).__name__})") from None
    diff = float(np.abs(scores - expected).max(initial=0.0))
    made = f" (bundle made with {'; '.join(drift)})" if drift else ""
    if not diff <= TOLERANCE:
        raise LogsieveError(f"{path}: the model's scores differ from those recorded at export by up to {diff:.2g}"
                            f"{made}; re-export it from its run directory in this environment")  # fmt: skip
    if drift:
        warnings.warn(f"{path}: exported under other library versions ({'; '.join(drift)}); its self-check "
                      "scores still match, so it loads", BundleWarning, stacklevel=3)  # fmt: skip


def _check_hdfs_templates(path: Path, source: TemplateSource) -> None:
    """Scoring parses raw lines with this logsieve's shipped set: it must be the set the bundle recorded."""
    if _pairs_sha256(_hdfs_templates()) != source.sha256:
        raise LogsieveError(f"{path}: this logsieve ships another HDFS template set than the bundle was made with,"
                            " so raw lines map to other events; re-export the model with this version")  # fmt: skip
