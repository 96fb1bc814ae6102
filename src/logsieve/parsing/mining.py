"""Drain-style template mining for logs whose templates are unknown.

The idea follows Drain (He et al., ICWS 2017): a fixed-depth tree routes a message by its token count, then by
its first few tokens, to a short list of clusters; the message joins the most similar cluster (share of equal
tokens >= ``sim_threshold``) or starts a new one, and differing positions of a joined template become ``<*>``.

Speed comes from doing the per-line work in polars: variables (block ids, IPs, paths, numbers) are masked with
vectorised regexes over the whole Series, the Python tree only sees the *unique* masked strings (a few hundred
for HDFS), and ids are mapped back with a hash lookup. A masked string, once assigned, keeps its cluster forever
(``_assigned``), so learning is deterministic and online learning in batches equals one uninterrupted pass.

On a stream of distinct messages this gives the same clusters and numbering as Drain3 with the same depth,
threshold and max_children. The one deliberate difference: Drain3 routes a repeated message through the tree
again and may then put it in a newer cluster; here a repeat always keeps its first id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.artifacts import atomic_write_text
from logsieve.errors import DataError, LogsieveError

WILDCARD = "<*>"
UNKNOWN = "M0"  # transform() answer for a line that fits no learned cluster
STATE_VERSION = 1

# (regex, replacement), applied in order with polars/Rust regex syntax. Order matters: a block id inside a path
# and the IP inside "/10.0.0.1:50010" are masked before paths and numbers get a chance.
DEFAULT_MASKS: tuple[tuple[str, str], ...] = (
    (r"blk_-?\d+(?:\s+blk_-?\d+)*", "<BLK>"),  # a list of block ids is one variable
    (r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?", "<IP>"),  # IPv4 with optional port
    (r"(^|\s)/[\w.\-]+(?:/[\w.\-<>*]*)*", "${1}<PATH>"),  # absolute paths; "/<IP>" is not a path
    (r"\b\d+(?:\.\d+)?\b", "<NUM>"),  # free-standing numbers, not digits inside words such as subdir19
)


@dataclass
class Cluster:
    """One template: its tokens, how many lines it has seen, and the tree path that leads to it."""

    id: str
    tokens: list[str]
    count: int
    path: tuple

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


def _is_variable(token: str) -> bool:
    """Tokens with a digit are probably variables and must not steer the tree (Drain's heuristic).

    Masked tokens (``<NUM>``) route as constants: every masked value already looks the same.
    """
    return token == WILDCARD or any(c.isdigit() for c in token)


def _similarity(template: list[str], tokens: list[str]) -> tuple[float, int]:
    """Drain's simSeq: share of positions where the template has the same constant token; plus #wildcards."""
    if not tokens:
        return 1.0, 0  # two empty messages are the same
    same = wild = 0
    for t, s in zip(template, tokens, strict=True):  # a leaf holds clusters of one token count
        if t == WILDCARD:
            wild += 1
        elif t == s:
            same += 1
    return same / len(tokens), wild


class TemplateMiner:
    """Online Drain-style miner: ``partial_fit`` learns, ``transform`` maps messages to ids "M1", "M2", ….

    Ids are numbered in order of creation and never change. ``transform`` does not learn: a message that fits no
    cluster gets ``"M0"``. ``fit_transform`` learns first, so every message gets a real id; like ``partial_fit`` it
    continues from the current state (on a fresh miner that is a plain fit).

    Memory grows with the number of distinct masked messages (a few hundred for HDFS); if it explodes, some
    variable is left unmasked: add a mask.
    """

    def __init__(
        self,
        depth: int = 4,
        sim_threshold: float = 0.5,
        max_children: int = 100,
        masks: Sequence[tuple[str, str]] = DEFAULT_MASKS,
    ) -> None:
        if depth < 3:
            raise ValueError("depth must be >= 3 (root, token-count layer and leaves)")
        if not 0.0 <= sim_threshold <= 1.0:
            raise ValueError("sim_threshold must be in [0, 1]")
        if max_children < 2:
            raise ValueError("max_children must be >= 2")
        self.depth, self.sim_threshold, self.max_children = depth, sim_threshold, max_children
        self.masks = tuple((str(p), str(r)) for p, r in masks)
        self.clusters_: list[Cluster] = []
        self._leaves: dict[tuple, list[Cluster]] = {}  # tree path -> clusters, in creation order
        self._children: dict[tuple, set] = {}  # tree path prefix -> its child keys
        self._assigned: dict[str, Cluster] = {}  # masked message -> its cluster, fixed once learned

    # ---- public API -------------------------------------------------------------------------------------------

    def mask(self, contents: pl.Series | Sequence[str]) -> pl.Series:
        """Replace variables with their mask names, vectorised over the whole Series."""
        s = _as_series(contents)
        for pattern, replacement in self.masks:
            try:
                s = s.str.replace_all(pattern, replacement)
            except pl.exceptions.ComputeError as e:
                raise LogsieveError(f"mask {pattern!r} is not a valid regex: {str(e).splitlines()[0]}") from None
        return s

    def partial_fit(self, contents: pl.Series | Sequence[str]) -> TemplateMiner:
        """Learn from a batch: every new unique masked message goes through the tree once, in order of appearance."""
        self._learn_uniques(_unique_counts(self.mask(contents)))
        return self

    def transform(self, contents: pl.Series | Sequence[str]) -> pl.Series:
        """Template id per message; ``"M0"`` where nothing learned fits. Never changes the miner."""
        masked = self.mask(contents)
        return self._map_back(masked, masked.unique(maintain_order=True))

    def fit_transform(self, contents: pl.Series | Sequence[str]) -> pl.Series:
        """``partial_fit`` then ``transform``, masking and de-duplicating only once."""
        masked = self.mask(contents)
        uniques = _unique_counts(masked)
        self._learn_uniques(uniques)
        return self._map_back(masked, uniques["masked"])

    @property
    def templates_(self) -> pl.DataFrame:
        """Learned templates: id, template (mask names and ``<*>`` for variables), count of lines seen."""
        return pl.DataFrame(
            {
                "id": [c.id for c in self.clusters_],
                "template": [c.template for c in self.clusters_],
                "count": [c.count for c in self.clusters_],
            },
            schema={"id": pl.String, "template": pl.String, "count": pl.Int64},
        )

    def to_state(self) -> dict[str, Any]:
        """The whole state as a JSON-able dict (what ``save`` writes and a bundle stores), so ``from_state``
        can continue online."""
        return {
            "version": STATE_VERSION,
            "params": {
                "depth": self.depth,
                "sim_threshold": self.sim_threshold,
                "max_children": self.max_children,
                "masks": [list(m) for m in self.masks],
            },
            "clusters": [
                {"id": c.id, "tokens": c.tokens, "count": c.count, "path": list(c.path)} for c in self.clusters_
            ],
            "assigned": {text: c.id for text, c in self._assigned.items()},
        }

    @classmethod
    def from_state(cls, state: object, where: object = "template miner state") -> TemplateMiner:
        """Rebuild a miner from ``to_state``'s dict; it keeps its ids and continues learning where it stopped.

        ``where`` names the state's origin (a file, a bundle) in the one-line ``DataError`` for a bad state."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise DataError(where, f"not a template miner state of version {STATE_VERSION}")
        try:
            p = state["params"]
            miner = cls(p["depth"], p["sim_threshold"], p["max_children"], [tuple(m) for m in p["masks"]])
            by_id = {}
            for c in state["clusters"]:
                cluster = Cluster(str(c["id"]), [str(t) for t in c["tokens"]], int(c["count"]), tuple(c["path"]))
                miner._attach(cluster)
                by_id[cluster.id] = cluster
            miner._assigned = {text: by_id[cid] for text, cid in state["assigned"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(where, f"template miner state is malformed ({type(e).__name__}: {e})") from None
        return miner

    def save(self, path: str | Path) -> None:
        """Write ``to_state`` as JSON, atomically, so ``load`` can continue online."""
        atomic_write_text(Path(path), json.dumps(self.to_state(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> TemplateMiner:
        """Rebuild a miner saved by ``save``; it keeps its ids and continues learning where it stopped."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(path, "template miner state not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(path, f"not a template miner state ({e})") from None
        return cls.from_state(state, path)

    # ---- internals ----------------------------------------------------------------------------------------------

    def _learn_uniques(self, uniques: pl.DataFrame) -> None:
        for text, n in zip(uniques["masked"].to_list(), uniques["len"].to_list(), strict=True):
            cluster = self._assigned.get(text)
            if cluster is None:
                cluster = self._assigned[text] = self._learn(text)
            cluster.count += n

    def _map_back(self, masked: pl.Series, uniques: pl.Series) -> pl.Series:
        """Ids for the unique strings only, then a hash join spreads them over every line, in input order."""
        ids = pl.Series([self._lookup(text) for text in uniques.to_list()], dtype=pl.String)
        mapping = pl.DataFrame({"masked": uniques, "template_id": ids})
        out = pl.DataFrame({"masked": masked}).join(mapping, on="masked", how="left", maintain_order="left")
        return out["template_id"]

    def _lookup(self, text: str) -> str:
        """Id of a masked message without learning: its fixed assignment, else the best fitting cluster, else M0."""
        cluster = self._assigned.get(text) or self._match(text.split())
        return cluster.id if cluster is not None else UNKNOWN

    def _learn(self, text: str) -> Cluster:
        """Drain's step for one new masked message: join the most similar cluster (generalising it) or start one."""
        tokens = text.split()
        cluster = self._match(tokens)
        if cluster is None:
            cluster = Cluster(f"M{len(self.clusters_) + 1}", list(tokens), 0, self._grow_path(tokens))
            self._attach(cluster)
        else:
            cluster.tokens = [t if t == s else WILDCARD for t, s in zip(cluster.tokens, tokens, strict=True)]
        return cluster

    def _match(self, tokens: list[str]) -> Cluster | None:
        leaf = self._search_path(tokens)
        return None if leaf is None else self._best(self._leaves.get(leaf, []), tokens)

    def _best(self, candidates: list[Cluster], tokens: list[str]) -> Cluster | None:
        """Most similar cluster above the threshold; ties go to more wildcards, then to the older cluster."""
        best, best_key = None, (-1.0, -1)
        for c in candidates:
            key = _similarity(c.tokens, tokens)
            if key > best_key:
                best, best_key = c, key
        return best if best is not None and best_key[0] >= self.sim_threshold else None

    def _keys(self, tokens: list[str]) -> list:
        """Tree keys below the root: token count, then up to ``depth - 3`` leading tokens.

        ``depth`` counts every level down to the leaves, as in Drain: root, token count, token layers, leaf. The
        last token never routes, so a leaf always has at least one token left to compare by similarity.
        """
        return [len(tokens)] + tokens[: min(self.depth - 3, len(tokens) - 1)]

    def _search_path(self, tokens: list[str]) -> tuple | None:
        """Follow existing branches (exact token, else the ``<*>`` branch); None if there is no way down."""
        keys = self._keys(tokens)
        path: tuple = (keys[0],)
        if path not in self._leaves and path not in self._children:
            return None
        for token in keys[1:]:
            children = self._children.get(path, set())
            key = WILDCARD if _is_variable(token) else token
            if key not in children:
                if WILDCARD not in children:
                    return None
                key = WILDCARD
            path += (key,)
        return path

    def _grow_path(self, tokens: list[str]) -> tuple:
        """Path for a new cluster, creating branches; a full node sends newcomers to its ``<*>`` branch."""
        keys = self._keys(tokens)
        path: tuple = (keys[0],)
        for token in keys[1:]:
            children = self._children.get(path, set())
            key = WILDCARD if _is_variable(token) else token
            if key not in children and len(children) >= self.max_children - (WILDCARD not in children):
                key = WILDCARD  # keep one slot for the wildcard branch
            path += (key,)
        return path

    def _attach(self, cluster: Cluster) -> None:
        """Register a cluster under its path (creating the branches) and give it its id slot."""
        for i in range(1, len(cluster.path)):
            self._children.setdefault(cluster.path[:i], set()).add(cluster.path[i])
        self._leaves.setdefault(cluster.path, []).append(cluster)
        self.clusters_.append(cluster)


def _unique_counts(masked: pl.Series) -> pl.DataFrame:
    """One row per unique string with its count, in order of first appearance, so the tree's order is fixed."""
    return pl.DataFrame({"masked": masked}).group_by("masked", maintain_order=True).len()


def _as_series(contents: pl.Series | Sequence[str]) -> pl.Series:
    """Accept a polars Series or any sequence of str; nulls become empty messages."""
    s = contents if isinstance(contents, pl.Series) else pl.Series("content", list(contents), dtype=pl.String)
    if isinstance(s.dtype, (pl.Categorical, pl.Enum)):
        s = s.cast(pl.String)
    if s.dtype != pl.String:
        raise TypeError(f"contents must be strings, got {s.dtype}")
    return s.fill_null("")
