"""Request and response bodies of the HTTP service (pydantic: every rejection names its field).

Requests are strict (no "1" for true, no 5 for "E5") and closed (unknown fields are an error, so a typo such as
``"explian"`` is reported instead of silently ignored). JSON may hold lone surrogates (``"\\ud800"``), which are
not text; pydantic refuses them as ``string_unicode`` for the field that holds them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_ID_CHARS = 1_000
MAX_EVENT_CHARS = 200


SessionId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
EventId = Annotated[str, Field(min_length=1, max_length=MAX_EVENT_CHARS)]


class SessionIn(BaseModel):
    """One session: its id and its events in order (template ids such as ``E5``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: SessionId
    events: list[EventId] = Field(min_length=1)


class ScoreRequest(BaseModel):
    """Either ``sessions`` or raw HDFS ``lines`` (grouped by block id on the server), not both."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [
            {"sessions": [{"id": "blk_1", "events": ["E5", "E22", "E5", "E11", "E9"]}], "explain": True},
            {"lines": ["081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
                       "blk_38865049064139660 terminating"]},
        ]},
    )  # fmt: skip

    sessions: list[SessionIn] | None = Field(None, min_length=1, description="sessions to score")
    lines: list[str] | None = Field(None, min_length=1, description="raw log lines (HDFS, or the bundle's format)")
    explain: bool = Field(
        False, description="explain each alert (anomaly or new event): weighing events, nearest normal, tree path"
    )

    @field_validator("sessions")
    @classmethod
    def _unique_ids(cls, sessions: list[SessionIn] | None) -> list[SessionIn] | None:
        seen: dict[str, int] = {}
        for i, s in enumerate(sessions or []):
            if s.id in seen:
                raise PydanticCustomError("duplicate_id", "session id '{id}' of [{i}] repeats [{j}]; each session "
                                          "needs its own id", {"i": i, "j": seen[s.id], "id": s.id})  # fmt: skip
            seen[s.id] = i
        return sessions

    @model_validator(mode="after")
    def _one_input(self) -> ScoreRequest:
        if (self.sessions is None) == (self.lines is None):
            raise PydanticCustomError("one_input", "give exactly one of 'sessions' or 'lines'")
        return self


class Weighing(BaseModel):
    """One event type that raises the score: the score without every occurrence of it (occlusion)."""

    event: str
    count: int
    unknown: bool  # never seen in training
    score_without: float
    drop: float  # score - score_without
    flips: bool  # the session would be normal without it


class Explanation(BaseModel):
    """Why a session was flagged (see ``logsieve.serving.explain``); the nested parts are that module's dicts."""

    weighing: list[Weighing]
    nearest_normal: dict[str, Any] | None  # closest normal training count profiles, and the differences in words
    decision_path: dict[str, Any] | None  # decision trees only


class SessionResult(BaseModel):
    id: str
    score: float
    verdict: Literal["anomaly", "normal"]
    threshold: float
    events: int
    unknown_events: int  # events the model never saw in training
    new_event: bool  # unknown_events > 0: an alert even when the verdict is normal
    start_time: datetime | None = None  # raw lines only
    end_time: datetime | None = None
    first_line: int | None = Field(None, description="raw lines only: first of the session's lines (1 = lines[0])")
    last_line: int | None = None
    explanation: Explanation | None = Field(None, description="with explain: true, for alerts only")


class LineCounts(BaseModel):
    """What became of raw lines: read, rejected by reason, well-formed but naming no block."""

    total: int
    rejected: int
    by_reason: dict[str, int]
    unblocked: int


class ModelInfo(BaseModel):
    kind: str
    name: str
    threshold: float
    templates: str
    vocabulary: int


class ScoreResponse(BaseModel):
    model: ModelInfo
    sessions: list[SessionResult]
    lines: LineCounts | None = None  # raw input only


class ErrorBody(BaseModel):
    """Every 4xx answer: ``detail`` is one line naming the field or limit; ``errors`` lists each problem."""

    detail: str
    errors: list[dict[str, str]] | None = None
