"""Why a session was flagged: the events that weigh most, its nearest normal training sessions, its raw lines
and, for a decision tree, the path through the tree — one JSON-ready dict per session.

Occlusion (leave one event type out, rescore) works for every model kind because it only calls
``model.score``, all variants of all sessions in one call. Its blind spots are absence (a missing event)
and redundancy (two events that each suffice); the nearest-normal comparison covers both, since it names
what the session has that its closest normal neighbours lack and the other way round.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
from sklearn.neighbors import NearestNeighbors

from logsieve.serving.bundle import Bundle
from logsieve.serving.source_lines import read_back
from logsieve.serving.tree_path import decision_paths

TOP_EVENTS = 3  # weighing events reported per session
NEIGHBOURS = 3  # nearest normal count profiles reported per session
WORDS = 5  # differences spelt out in the one-line text


def explain_sessions(
    bundle: Bundle,
    sessions: pl.DataFrame,
    scores: np.ndarray | None = None,
    *,
    files: pl.DataFrame | None = None,
    show_lines: int | None = None,
    top_events: int = TOP_EVENTS,
    neighbours: int = NEIGHBOURS,
) -> list[dict[str, Any]]:
    """One explanation per row of ``sessions`` (pass the alerts only; each costs a few rescorings).

    ``scores``: the rows' scores if already known. ``files``: ``ParseResult.files`` of raw-log input, which with
    the rows' ``line_numbers`` gives the raw lines; ``show_lines`` caps them per session (lines of weighing
    events first). Each dict: ``session_id``, ``score``, ``threshold``, ``weighing`` (list of {event, count,
    unknown, score_without, drop, flips}), ``nearest_normal`` ({text, differences, neighbours} or None without
    profiles), ``decision_path`` ({text, conditions, …} for decision trees, else None), ``lines`` (list of
    {source, line, event, weighing, text} or None without raw lines) and ``lines_omitted``.
    """
    if sessions.height == 0:
        return []
    scores = bundle.model.score(sessions) if scores is None else np.asarray(scores, dtype=float)
    weighing = weighing_events(bundle, sessions, scores, top_events)
    nearest = nearest_normals(bundle, sessions["events"], neighbours)
    paths = decision_paths(bundle.model, sessions["events"], bundle.threshold)
    lines = session_lines(sessions, files, [{w["event"] for w in ws} for ws in weighing], show_lines)
    return [
        {
            "session_id": sid,
            "score": float(score),
            "threshold": bundle.threshold,
            "weighing": ws,
            "nearest_normal": near,
            "decision_path": path,
            "lines": shown,
            "lines_omitted": omitted,
        }
        for sid, score, ws, near, path, (shown, omitted) in zip(
            sessions["session_id"], scores, weighing, nearest, paths, lines, strict=True
        )
    ]


# --- (a) occlusion ------------------------------------------------------------------------------------------


def weighing_events(
    bundle: Bundle, sessions: pl.DataFrame, scores: np.ndarray, top: int = TOP_EVENTS
) -> list[list[dict[str, Any]]]:
    """Per session, the event types whose removal (every occurrence) lowers the score most, largest drop first;
    only types with a positive drop. ``flips``: the session would be normal without it."""
    rows = sessions.select("events").with_row_index("row").explode("events").drop_nulls("events")
    types = rows.group_by("row", "events", maintain_order=True).agg(count=pl.len()).rename({"events": "type"})
    variants = (
        types.join(rows, on="row", how="inner", maintain_order="left_right")
        .filter(pl.col("events") != pl.col("type"))
        .group_by("row", "type", maintain_order=True)
        .agg("events")
    )  # a session of one event type has no variant: nothing to leave out
    out: list[list[dict[str, Any]]] = [[] for _ in range(sessions.height)]
    if variants.height == 0:
        return out
    without = bundle.model.score(variants.with_columns(session_id=pl.lit(""), label=pl.lit(None, pl.Int8)))
    known = set(bundle.vocabulary)
    table = types.join(variants.select("row", "type").with_columns(without=without), on=["row", "type"])
    base = pl.Series("base", np.asarray(scores, dtype=float))
    table = (
        table.with_columns(drop=base.gather(table["row"]) - table["without"])
        .filter(pl.col("drop") > 1e-9)
        .sort(["row", "drop"], descending=[False, True], maintain_order=True)
        .group_by("row", maintain_order=True)
        .head(top)
    )
    for row, event, count, score_without, drop in table.select("row", "type", "count", "without", "drop").iter_rows():
        out[row].append({
            "event": event, "count": int(count), "unknown": event not in known, "score_without": float(score_without),
            "drop": float(drop), "flips": bool(score_without < bundle.threshold),
        })  # fmt: skip
    return out


# --- (b) nearest normal training sessions -------------------------------------------------------------------


class NormalIndex:
    """The normal count profiles of a bundle as a matrix, with an L1 (Manhattan) nearest-neighbour search."""

    def __init__(self, profiles: pl.DataFrame, vocabulary: list[str]) -> None:
        seen = profiles["events"].explode().drop_nulls().unique().to_list() if profiles.height else []
        self.events = sorted(set(vocabulary) | set(seen), key=event_key)
        self.column = {e: i for i, e in enumerate(self.events)}
        self.sessions = profiles["sessions"].to_numpy() if profiles.height else np.zeros(0, np.int64)
        self.matrix = self.counts(profiles["events"])[0] if profiles.height else np.zeros((0, len(self.events)))
        self.search = None
        if profiles.height:
            self.search = NearestNeighbors(metric="manhattan").fit(self.matrix)

    def counts(self, events: pl.Series) -> tuple[np.ndarray, list[dict[str, int]]]:
        """(sessions × known events) count matrix and, per session, the counts of events the profiles never had."""
        out = np.zeros((len(events), len(self.events)), dtype=np.float32)
        flat = pl.DataFrame({"events": events}).with_row_index("row").explode("events").drop_nulls("events")
        col = flat["events"].replace_strict(self.column, default=-1, return_dtype=pl.Int64).to_numpy()
        row = flat["row"].to_numpy()
        hit = col >= 0
        np.add.at(out, (row[hit], col[hit]), 1.0)
        extra: list[dict[str, int]] = [{} for _ in range(len(events))]
        for r, e in zip(row[~hit].tolist(), flat["events"].filter(pl.Series(~hit)).to_list(), strict=True):
            extra[r][e] = extra[r].get(e, 0) + 1
        return out, extra

    def nearest(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and L1 distances of the ``k`` nearest profiles per row; ties go to the profile more training
        sessions share (the most typical normal block)."""
        ask = min(len(self.sessions), k + 8)
        dist, idx = self.search.kneighbors(x, n_neighbors=ask)  # type: ignore[union-attr]
        order = np.lexsort((-self.sessions[idx], dist), axis=1)[:, :k]
        return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


_INDEX: dict[int, tuple[pl.DataFrame, NormalIndex]] = {}  # id(profiles) -> index: serve explains per request


def normal_index(bundle: Bundle) -> NormalIndex:
    key = id(bundle.normal_profiles)
    hit = _INDEX.get(key)
    if hit is None or hit[0] is not bundle.normal_profiles:
        if len(_INDEX) > 8:
            _INDEX.clear()
        hit = _INDEX[key] = (bundle.normal_profiles, NormalIndex(bundle.normal_profiles, bundle.vocabulary))
    return hit[1]


def nearest_normals(bundle: Bundle, events: pl.Series, k: int = NEIGHBOURS) -> list[dict[str, Any] | None]:
    """Per session: the ``k`` nearest normal training count profiles and how the session differs from the
    closest one, in words ("E3 ×6 where the closest normal blocks have ×8"). None when the bundle has none."""
    index = normal_index(bundle)
    if index.search is None:
        return [None] * len(events)
    x, extra = index.counts(events)
    distinct, inverse = np.unique(x, axis=0, return_inverse=True)  # flagged sessions share few count vectors
    idx, dist = index.nearest(distinct, k)
    out: list[dict[str, Any] | None] = []
    for i, u in enumerate(np.asarray(inverse).reshape(-1)):
        unknown = extra[i]
        closest = index.matrix[idx[u, 0]]
        diffs = _differences(index.events, x[i], closest, unknown)
        out.append({
            "text": _words(diffs, int(index.sessions[idx[u, 0]])),
            "differences": diffs,
            "neighbours": [
                {"distance": int(d) + sum(unknown.values()), "sessions": int(index.sessions[j]),
                 "counts": {e: int(c) for e, c in zip(index.events, index.matrix[j], strict=True) if c}}
                for j, d in zip(idx[u], dist[u], strict=True)
            ],
        })  # fmt: skip
    return out


def _differences(
    events: list[str], have: np.ndarray, closest: np.ndarray, unknown: dict[str, int]
) -> list[dict[str, Any]]:
    """Events whose count differs from the closest normal profile, biggest gap first."""
    diffs = [
        {"event": e, "count": int(a), "normal": int(b), "unknown": False}
        for e, a, b in zip(events, have, closest, strict=True)
        if a != b
    ]
    diffs += [{"event": e, "count": n, "normal": 0, "unknown": True} for e, n in unknown.items()]
    return sorted(diffs, key=lambda d: (not d["unknown"], -abs(d["count"] - d["normal"]), event_key(d["event"])))


def _words(diffs: list[dict[str, Any]], sessions: int) -> str:
    if not diffs:
        return f"same event counts as {sessions:,} normal training sessions (the order must differ)"
    parts = []
    for d in diffs[:WORDS]:
        e, n, m = d["event"], d["count"], d["normal"]
        if d["unknown"]:
            parts.append(f"{e} ×{n}, never seen in training")
        elif n == 0:
            parts.append(f"no {e} where the closest normal blocks have ×{m}")
        elif m == 0:
            parts.append(f"{e} ×{n} where the closest normal blocks have none")
        else:
            parts.append(f"{e} ×{n} where the closest normal blocks have ×{m}")
    more = f"; {len(diffs) - WORDS} more difference(s)" if len(diffs) > WORDS else ""
    return "; ".join(parts) + more + f" (closest: {sessions:,} normal training session{'s' * (sessions != 1)})"


def event_key(event: str) -> tuple[str, int, str]:
    """Natural order: E2 before E10."""
    m = re.match(r"^(\D*)(\d+)$", event)
    return (m.group(1), int(m.group(2)), "") if m else (event, -1, event)


# --- (c) raw lines ------------------------------------------------------------------------------------------


def session_lines(
    sessions: pl.DataFrame, files: pl.DataFrame | None, weighing: list[set[str]], show: int | None
) -> list[tuple[list[dict[str, Any]] | None, int]]:
    """Per session (shown lines or None, lines left out): the lines of weighing events first, then the others,
    up to ``show``, listed in session order; all sessions' lines read back in one pass per file."""
    if files is None or files.height == 0 or "line_numbers" not in sessions.columns:
        return [(None, 0)] * sessions.height
    picked: list[list[tuple[int, str, bool]]] = []
    omitted: list[int] = []
    for numbers, events, marked in zip(sessions["line_numbers"], sessions["events"], weighing, strict=True):
        lines = [(n, e, e in marked) for n, e in zip(numbers.to_list(), events.to_list(), strict=True)]
        keep = lines
        if show is not None and len(lines) > show:
            order = [i for i, line in enumerate(lines) if line[2]] + [i for i, line in enumerate(lines) if not line[2]]
            keep = [lines[i] for i in sorted(order[: max(show, 0)])]
        picked.append(keep)
        omitted.append(len(lines) - len(keep))
    texts = read_back(files, (n for lines in picked for n, _, _ in lines))
    return [
        ([{"source": texts[n].source, "line": texts[n].line, "event": e, "weighing": w, "text": texts[n].text}
          for n, e, w in lines], left)
        for lines, left in zip(picked, omitted, strict=True)
    ]  # fmt: skip
