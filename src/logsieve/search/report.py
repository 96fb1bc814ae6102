"""What a search leaves behind: trials.csv, search_result.json (the file the *-grid* presets read) and
optuna's plots, all written atomically from the trial store."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import polars as pl
from optuna.trial import TrialState

from logsieve.artifacts import atomic_file, atomic_write_text, write_json
from logsieve.data.load import DataInfo
from logsieve.errors import LogsieveError
from logsieve.search.settings import SearchSettings
from logsieve.search.spaces import Space
from logsieve.training.trainer import epoch_rank


def state_counts(optuna_study: optuna.Study) -> Counter[str]:
    """Trials per state name (COMPLETE, PRUNED, RUNNING, FAIL, ...); a missing state counts 0."""
    return Counter(t.state.name for t in optuna_study.get_trials(deepcopy=False))


def trials_table(optuna_study: optuna.Study) -> pl.DataFrame:
    """One row per trial: state, objective, best-epoch validation figures, cost, parameters."""
    keys = ("val_f1", "val_loss", "best_epoch", "epochs_run", "seconds", "retry_of", "interrupted")
    rows = [{"number": t.number, "state": t.state.name, "value": t.value,
             **{k: t.user_attrs.get(k) for k in keys}, **t.params}
            for t in optuna_study.get_trials(deepcopy=False)]  # fmt: skip
    return pl.DataFrame(rows, infer_schema_length=None)


def write_report(optuna_study: optuna.Study, space: Space, settings: SearchSettings, out: Path, seconds: float,
                 command: str, url: str, name: str, data: DataInfo, jobs: int) -> dict[str, Any]:  # fmt: skip
    """trials.csv, search_result.json and the plots; the best trial is the best epoch of all, by ``epoch_rank``."""
    table = trials_table(optuna_study)
    done = optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise LogsieveError(f"no trial of {name!r} completed; nothing to report")
    best = max(done, key=lambda t: epoch_rank(t.user_attrs["val_f1"], t.user_attrs["val_loss"]))
    counts = state_counts(optuna_study)
    result = {
        "best_params": {**space.fixed, **best.params},
        "command": command,
        "objective": "validation F1 of the best epoch (ties: validation loss); test split never used",
        "val_f1": best.user_attrs["val_f1"], "val_loss": best.user_attrs["val_loss"], "best_trial": best.number,
        "base_preset": settings.preset, "settings": asdict(settings), "space": space.to_dict(),
        "trials": {"complete": counts["COMPLETE"], "pruned": counts["PRUNED"], "failed": counts["FAIL"],
                   "grid_points": space.size},
        "seconds": round(seconds, 1), "jobs": jobs, "storage": url,
        "study_name": name,  # the --study-name (optuna's word); key kept for files already written
        "data": data.record(), "trial_seconds_sum": round(float(table["seconds"].fill_null(0).sum()), 1),
    }  # fmt: skip
    atomic_write_text(out / "trials.csv", table.write_csv())
    write_json(out / "search_result.json", result)
    result["plots"] = _plots(optuna_study, out)
    return result


def _plots(optuna_study: optuna.Study, out: Path) -> list[str]:
    """Optuna's optimisation history and parameter importances (skipped when too few trials)."""
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plt.switch_backend("Agg")

    written = []
    for name, plot in (("history.png", ovm.plot_optimization_history), ("importances.png", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax: Any = plot(optuna_study)  # typed Axes; the fallback below also takes an array of Axes
            fig = getattr(ax, "figure", None) or ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            with atomic_file(out / name) as tmp:
                fig.savefig(tmp, dpi=110, format="png")  # the temp name ends in .tmp: say the format
            written.append(name)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need two completed trials with different parameters
        finally:
            plt.close("all")
    return written
