"""`logsieve serve`: a real uvicorn on 127.0.0.1 (free port, in a thread), spoken to over real sockets.

Every client mistake must come back as a 4xx naming its field or limit, never a 5xx, and a client that goes
away mid-request must leave the server serving. Loops are bounded in count and time.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

from logsieve.data.splits import split_sessions
from logsieve.errors import LogsieveError
from logsieve.models.baselines import CountBaseline
from logsieve.parsing.pipeline import parse_logs_report
from logsieve.serving.app import bind, create_app, make_server
from logsieve.serving.bundle import Bundle, normal_profiles
from logsieve.serving.limits import Limits
from logsieve.serving.schemas import ScoreResponse

LIMITS = Limits(max_body_bytes=256 * 1024, max_sessions=200, max_events=500)
MAX_S, MAX_E = LIMITS.max_sessions, LIMITS.max_events
GOOD_LINE = ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
             "blk_38865049064139660 terminating")  # fmt: skip
TIMEOUT = 30.0


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL; stop it after."""
    sock = bind("127.0.0.1", 0)
    server = make_server(app, log_level="error")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def splits(simulated):
    return split_sessions(simulated, seed=0)


@pytest.fixture(scope="module")
def bundle(splits) -> Bundle:
    train, val, _ = splits
    model = CountBaseline("decision-tree", seed=0).fit(train, val)
    return Bundle(model, "decision-tree", "decision-tree", {}, model.vocab_.events_,
                  normal_profiles=normal_profiles(train))  # fmt: skip


@pytest.fixture(scope="module")
def base(bundle) -> Iterator[str]:
    with running(create_app(bundle, LIMITS)) as url:
        yield url


@pytest.fixture()
def client(base) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def raw_log(tmp_path_factory) -> Path:
    from logsieve.simulator.simulate import simulate_logs

    return simulate_logs(40, anomaly_rate=0.1, seed=5, out_dir=tmp_path_factory.mktemp("raw")).log


def as_request(df: pl.DataFrame) -> list[dict]:
    return [{"id": sid, "events": ev} for sid, ev in zip(df["session_id"], df["events"].to_list(), strict=True)]


def metric(base: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return metrics(base, {"x": (name, labels)})["x"]


def metrics(base: str, queries: dict[str, tuple[str, dict[str, str]]]) -> dict[str, float]:
    """One scrape: for each query name, the sum of the samples of its metric whose labels include its labels."""
    text = httpx.get(f"{base}/metrics", timeout=TIMEOUT).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return {
        key: sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
        for key, (name, labels) in queries.items()
    }


def wait_for(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# --- scoring ----------------------------------------------------------------------------------------------


def test_scoring_sessions_gives_the_models_scores_and_verdicts_in_request_order(client, bundle, splits):
    test = splits[2].head(150)
    body = as_request(test)
    body[0] = {"id": "odd-one", "events": ["E5", "E99", "E99"]}  # two events the model never saw
    r = client.post("/v1/score", json={"sessions": body})
    assert r.status_code == 200, r.text
    res = ScoreResponse.model_validate(r.json())
    assert [s.id for s in res.sessions] == [b["id"] for b in body]
    expected = bundle.model.score(pl.DataFrame({"events": [b["events"] for b in body]}))
    assert np.allclose([s.score for s in res.sessions], expected)
    assert all(s.verdict == ("anomaly" if s.score >= bundle.threshold else "normal") for s in res.sessions)
    assert {s.verdict for s in res.sessions} == {"anomaly", "normal"}  # the sample holds both
    assert res.sessions[0].unknown_events == 2 and res.sessions[0].events == 3 and res.sessions[0].new_event
    assert all(s.unknown_events == 0 and not s.new_event for s in res.sessions[1:])
    assert all(s.first_line is None and s.start_time is None for s in res.sessions)
    assert res.model.threshold == bundle.threshold and res.lines is None
    assert all(s.explanation is None for s in res.sessions)


def test_raw_lines_are_grouped_into_the_same_block_sessions_as_parse(client, bundle, raw_log):
    lines = raw_log.read_text().splitlines()
    parsed = parse_logs_report([raw_log]).sessions
    unblocked = GOOD_LINE.replace("blk_38865049064139660", "xyz")  # a template but no block: no session
    bad = ["garbage", "", GOOD_LINE + "\nsecond line", "081109 203615 148 INFO dfs.FSNamesystem: nothing known",
           unblocked]  # fmt: skip
    sent = [lines[0] + "\n", *lines[1:], *bad]  # one trailing line break is forgiven
    r = client.post("/v1/score", json={"lines": sent})
    assert r.status_code == 200, r.text
    res = ScoreResponse.model_validate(r.json())
    got = {s.id: s for s in res.sessions}
    assert set(got) == set(parsed["session_id"])
    for row in parsed.iter_rows(named=True):  # parse numbers the file's lines from 1, as the request's are
        s = got[row["session_id"]]
        assert s.events == len(row["events"])
        assert (s.first_line, s.last_line) == (min(row["line_numbers"]), max(row["line_numbers"]))
        assert (s.start_time, s.end_time) == (row["start_time"], row["end_time"])
    expected = dict(zip(parsed["session_id"], bundle.model.score(parsed), strict=True))
    assert all(abs(s.score - expected[s.id]) < 1e-9 for s in res.sessions)
    assert res.lines is not None
    assert res.lines.total == len(sent) and res.lines.unblocked == 1
    assert res.lines.by_reason == {"malformed": 2, "empty": 1, "no_template": 1}
    assert res.lines.rejected == 4


def test_lines_without_any_block_give_no_sessions_and_their_counts(client):
    r = client.post("/v1/score", json={"lines": ["not a log line", "still not"]})
    assert r.status_code == 200
    assert r.json()["sessions"] == [] and r.json()["lines"]["by_reason"] == {"malformed": 2}


def test_explain_names_the_events_that_raise_an_alerts_score(client, bundle, splits):
    test = splits[2]
    scores = bundle.model.score(test)
    flagged = test.filter(pl.Series(scores >= bundle.threshold)).head(20)
    normal = test.filter(pl.Series(scores < bundle.threshold)).head(5)
    novel = normal.head(1).with_columns(
        session_id=pl.lit("novel"), events=pl.col("events").list.concat(pl.lit(["E99"]))
    )
    body = as_request(pl.concat([flagged, normal, novel]))
    r = client.post("/v1/score", json={"sessions": body, "explain": True})
    assert r.status_code == 200, r.text
    res = ScoreResponse.model_validate(r.json())
    anomalies = [s for s in res.sessions if s.verdict == "anomaly"]
    assert len(anomalies) == flagged.height > 0
    assert all(s.explanation is None for s in res.sessions if s.verdict == "normal" and not s.new_event)
    new = res.sessions[-1]  # an unseen event is an alert, explained even when the verdict is normal
    assert new.new_event and new.explanation is not None
    assert "E99" in json.dumps(new.explanation.nearest_normal)
    events = dict(zip(flagged["session_id"], flagged["events"].to_list(), strict=True))
    weighed = 0
    for s in anomalies:
        why = s.explanation
        assert why is not None and why.decision_path is not None and why.nearest_normal is not None
        drops = [w.drop for w in why.weighing]
        assert drops == sorted(drops, reverse=True) and all(d > 0 for d in drops)
        for w in why.weighing:  # recompute the occlusion independently
            without = [e for e in events[s.id] if e != w.event]
            assert w.count == events[s.id].count(w.event)
            assert abs(bundle.model.score(pl.DataFrame({"events": [without]}))[0] - w.score_without) < 1e-9
            assert w.flips == (w.score_without < bundle.threshold)
        weighed += bool(why.weighing)
    assert weighed > 0


# --- health, readiness, metrics, docs ------------------------------------------------------------------------


def test_healthz_and_readyz_follow_the_bundle(bundle):
    app = create_app(None, LIMITS)
    with running(app) as url, httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 503
        r = c.post("/v1/score", json={"sessions": [{"id": "a", "events": ["E5"]}]})
        assert r.status_code == 503 and "no model bundle" in r.json()["detail"]
        app.state.service.load(bundle)
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model"]["kind"] == "decision-tree"
        assert c.post("/v1/score", json={"sessions": [{"id": "a", "events": ["E5"]}]}).status_code == 200


def test_metrics_count_requests_sessions_alerts_and_rejected_lines(client, base, splits):
    queries = {  # name -> (metric, labels)
        "ok": ("logsieve_http_requests_total", {"route": "/v1/score", "status": "200"}),
        "422": ("logsieve_http_requests_total", {"route": "/v1/score", "status": "422"}),
        "413": ("logsieve_http_requests_total", {"route": "/v1/score", "status": "413"}),
        "other": ("logsieve_http_requests_total", {"route": "other", "status": "404"}),
        "sessions": ("logsieve_sessions_scored_total", {}),
        "alerts": ("logsieve_alerts_total", {}),
        "empty": ("logsieve_lines_rejected_total", {"reason": "empty"}),
        "timed": ("logsieve_http_request_duration_seconds_count", {"route": "/v1/score"}),
    }

    def now() -> dict[str, float]:
        return metrics(base, queries)

    before = now()
    scored = client.post("/v1/score", json={"sessions": as_request(splits[2].head(100))})
    from_lines = client.post("/v1/score", json={"lines": [GOOD_LINE, "", ""]})
    assert scored.status_code == from_lines.status_code == 200
    assert client.post("/v1/score", json={"sessions": "nope"}).status_code == 422
    assert client.post("/v1/score", content=b"x" * (LIMITS.max_body_bytes + 1)).status_code == 413
    assert client.get("/no/such/page/123").status_code == 404
    alerts = [s["verdict"] == "anomaly" or s["new_event"] for r in (scored, from_lines) for s in r.json()["sessions"]]
    assert 0 < sum(alerts) < len(alerts) == 101
    expected = {"ok": 2, "422": 1, "413": 1, "other": 1, "sessions": 101, "alerts": sum(alerts), "empty": 2,
                "timed": 4}  # fmt: skip
    assert wait_for(lambda: {k: v - before[k] for k, v in now().items()} == expected), (before, now())
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    assert "logsieve_bundle_loaded 1.0" in text.text
    assert 'route="/no/such/page/123"' not in text.text  # unknown paths share one label


def test_openapi_schema_and_docs(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/score"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScoreRequest")
    assert {"200", "400", "413", "422"} <= set(op["responses"])
    assert {"ScoreRequest", "ScoreResponse", "SessionIn", "Explanation"} <= set(spec["components"]["schemas"])
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# --- limits ---------------------------------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_413_and_the_server_goes_on(client):
    r = client.post("/v1/score", content=b"{" + b" " * LIMITS.max_body_bytes + b"}",
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["detail"]
    assert f"{LIMITS.max_body_bytes:,}" in r.json()["detail"]
    assert client.post("/v1/score", json={"sessions": [{"id": "a", "events": ["E5"]}]}).status_code == 200


def test_a_chunked_body_is_counted_while_it_streams(client):
    def chunks(total: int):
        body = json.dumps({"lines": [GOOD_LINE] * (total // (len(GOOD_LINE) + 3))}).encode()
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    big = client.post(
        "/v1/score", content=chunks(2 * LIMITS.max_body_bytes), headers={"content-type": "application/json"}
    )
    assert "content-length" not in big.request.headers  # really chunked
    assert big.status_code == 413 and "counted while streaming" in big.json()["detail"]
    small = client.post("/v1/score", content=chunks(20_000), headers={"content-type": "application/json"})
    assert small.status_code == 200, small.text  # the streamed body reaches the app whole
    assert small.json()["sessions"][0]["id"] == "blk_38865049064139660"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sessions": [{"id": f"s{i}", "events": ["E5"]} for i in range(MAX_S + 1)]},
         f"sessions: {MAX_S + 1} sessions exceed the limit of {MAX_S} per request (--max-sessions)"),
        ({"sessions": [{"id": "a", "events": ["E5"]}, {"id": "b", "events": ["E5"] * (MAX_E + 1)}]},
         f"sessions[1].events: session 'b' has {MAX_E + 1} events, over the limit of {MAX_E} per session (--max-"),
        ({"lines": [GOOD_LINE.replace("blk_38865049064139660", f"blk_{i}") for i in range(MAX_S + 1)]},
         f"lines: {MAX_S + 1} sessions exceed the limit of {MAX_S} per request (--max-sessions)"),
        ({"lines": [GOOD_LINE] * (MAX_E + 1)},
         f"lines: session 'blk_38865049064139660' has {MAX_E + 1} events, over the limit of {MAX_E} per session"),
    ],
    ids=["sessions", "events", "line-sessions", "line-events"],
)  # fmt: skip
def test_count_limits_answer_422_naming_the_limit(client, body, message):
    r = client.post("/v1/score", json=body)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(message), r.json()["detail"]


# --- malformed requests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b'{"sessions": [', 400, "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", 400, "body is not valid JSON"),
        (b"\x80abc", 400, "error parsing the body"),  # not UTF-8: FastAPI's own 400
        (b"", 422, "body: Field required"),
        (b'{"sessions": "abc"}', 422, "sessions: Input should be a valid list"),
        (b'{"sessions": [{"id": "a", "events": [1, 2]}]}', 422, "sessions[0].events[0]: Input should be a valid str"),
        (b'{"sessions": [{"id": 5, "events": ["E5"]}]}', 422, "sessions[0].id: Input should be a valid string"),
        (b'{"sessions": [{"id": "a", "events": []}]}', 422, "sessions[0].events: List should have at least 1 item"),
        (b'{"sessions": [{"id": "a", "events": ["E5"]}], "explain": "yes"}', 422, "explain: Input should be a valid"),
        (b'{"sessions": [{"id": "a", "events": ["E5"]}], "explian": true}', 422, "explian: Extra inputs are not"),
        (b'{"lines": ["x"], "sessions": [{"id": "a", "events": ["E5"]}]}', 422, "give exactly one of 'sessions' or"),
        (b'{"explain": true}', 422, "give exactly one of 'sessions' or 'lines'"),
        (b'{"sessions": [{"id": "a", "events": ["E5"]}, {"id": "a", "events": ["E6"]}]}', 422,
         "sessions: session id 'a' of [1] repeats [0]"),
        (b'{"sessions": [{"id": "\\ud800", "events": ["E5"]}]}', 422, "sessions[0].id:"),
        (b'{"lines": "one line"}', 422, "lines: Input should be a valid list"),
        (b"[1, 2, 3]", 422, "body:"),
    ],
    ids=["truncated", "binary", "not-utf8", "empty", "sessions-str", "events-int", "id-int", "no-events", "explain-str",
         "unknown-field", "both", "neither", "duplicate-id", "lone-surrogate", "lines-str", "array"],
)  # fmt: skip
def test_malformed_bodies_are_4xx_naming_the_problem(client, content, status, message):
    r = client.post("/v1/score", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_wrong_method_route_and_content_type_are_4xx(client):
    assert client.get("/v1/score").status_code == 405
    assert client.post("/v2/score", json={}).status_code == 404
    r = client.post("/v1/score", content=b'{"sessions": []}', headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_binding_a_taken_port_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(LogsieveError, match="cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])


# --- clients that go away, and load ---------------------------------------------------------------------------


def _raw_request(base: str, body: bytes, declared: int, read: bool) -> None:
    """Send a request over a raw socket (``body`` may be shorter than ``declared``) and close, maybe unread."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {declared}\r\n\r\n".encode() + body)  # fmt: skip
        if read:
            s.recv(1)


def test_clients_that_disconnect_mid_request_do_not_hurt_the_server(base, client, splits):
    closed_before = metric(base, "logsieve_http_requests_total", route="/v1/score", status="499")
    full = json.dumps({"sessions": as_request(splits[2].head(200)), "explain": True}).encode()
    for _ in range(3):
        _raw_request(base, full[: len(full) // 2], len(full), read=False)  # half a body, then gone
        _raw_request(base, full, len(full), read=False)  # a whole body, gone before the answer
    assert wait_for(lambda: metric(base, "logsieve_http_requests_total", route="/v1/score", status="499")
                    - closed_before == 3)  # fmt: skip
    r = client.post("/v1/score", json={"sessions": [{"id": "a", "events": ["E5", "E22"]}]})
    assert r.status_code == 200
    assert client.get("/healthz").status_code == 200
    assert metric(base, "logsieve_http_requests_total", status="500") == 0


def test_a_mixed_load_of_good_and_bad_requests_never_gets_a_5xx(base, splits):
    sessions = as_request(splits[2].head(3))
    json_type = {"content-type": "application/json"}
    kinds = [  # (method, path, content, expected status)
        ("POST", "/v1/score", json.dumps({"sessions": sessions}).encode(), 200),
        ("POST", "/v1/score", json.dumps({"lines": [GOOD_LINE, "junk"]}).encode(), 200),
        ("POST", "/v1/score", json.dumps({"sessions": sessions, "explain": True}).encode(), 200),
        ("POST", "/v1/score", b'{"sessions": [{"id": "a"', 400),
        ("POST", "/v1/score", b'{"sessions": [{"id": "a", "events": "E5"}]}', 422),
        ("POST", "/v1/score", json.dumps({"sessions": [{"id": str(i), "events": ["E5"]}
                                                       for i in range(LIMITS.max_sessions + 1)]}).encode(), 422),
        ("POST", "/v1/score", b" " * (LIMITS.max_body_bytes + 1), 413),
        ("GET", "/v1/score", None, 405),
        ("GET", "/nowhere", None, 404),
        ("GET", "/healthz", None, 200),
    ]  # fmt: skip
    n, workers, deadline = 2_000, 8, time.monotonic() + 240
    local, clients = threading.local(), []

    def one(i: int) -> tuple[int, int]:
        if time.monotonic() > deadline:
            return i, -1
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=TIMEOUT)
            clients.append(local.client)
        method, path, content, _ = kinds[i % len(kinds)]
        return i, local.client.request(method, path, content=content, headers=json_type).status_code

    try:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()
    statuses = Counter(s for _, s in results)
    assert -1 not in statuses, f"the load did not finish in time: {statuses}"
    assert not [s for s in statuses if s >= 500], statuses
    wrong = [
        (kinds[i % len(kinds)][1], kinds[i % len(kinds)][3], s) for i, s in results if s != kinds[i % len(kinds)][3]
    ]
    assert not wrong, wrong[:5]
    assert client_alive(base)


def client_alive(base: str) -> bool:
    return httpx.get(f"{base}/healthz", timeout=TIMEOUT).status_code == 200


# --- mined templates and the command line ---------------------------------------------------------------------


def test_a_bundle_with_mined_templates_groups_raw_lines_with_its_miner(tmp_path, raw_log):
    mined = parse_logs_report([raw_log], templates="mine")
    mined.miner.save(tmp_path / "miner.json")
    df = mined.sessions.with_columns(label=(pl.int_range(pl.len()) % 5 == 0).cast(pl.Int8))  # any two classes
    model = CountBaseline("logistic-regression").fit(df, df)
    miner_bundle = Bundle(model, "logistic-regression", "lr", {}, model.vocab_.events_, templates="miner",
                          miner_state=json.loads((tmp_path / "miner.json").read_text()))  # fmt: skip
    expected = parse_logs_report([raw_log], templates=tmp_path / "miner.json").sessions
    with running(create_app(miner_bundle, LIMITS)) as url:
        r = httpx.post(f"{url}/v1/score", json={"lines": raw_log.read_text().splitlines()}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    got = {s["id"]: s for s in r.json()["sessions"]}
    assert set(got) == set(expected["session_id"])
    lengths = expected["events"].list.len().to_list()
    assert [got[sid]["events"] for sid in expected["session_id"]] == lengths
    assert all(s["unknown_events"] == 0 for s in got.values())  # the miner's ids are the model's vocabulary
    assert np.allclose([got[sid]["score"] for sid in expected["session_id"]], model.score(expected))


def test_serve_command_serves_an_exported_bundle_and_stops_on_sigint(simulated, tmp_path):
    import signal
    import subprocess
    import sys

    from logsieve.config import resolve_preset
    from logsieve.data.load import DataInfo
    from logsieve.serving.bundle import export_bundle
    from logsieve.training.runs import make_splits
    from logsieve.training.study import baseline_run

    df = simulated.head(700).select("session_id", "label", "events")
    splits = make_splits(df, resolve_preset("baseline"))
    baseline_run("decision-tree", 0, splits, tmp_path / "run", DataInfo.of(df, "sim", "0" * 64),
                 resolve_preset("baseline").data)  # fmt: skip
    bundle_dir = export_bundle(tmp_path / "run", tmp_path / "bundle")
    cmd = [sys.executable, "-m", "logsieve.cli", "serve", "--model", str(bundle_dir), "--port", "0",
           "--max-sessions", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "300"})
    try:
        line, deadline = "", time.monotonic() + 60
        while "serving" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, f"no address in {line!r}"
        with httpx.Client(base_url=url.group(0), timeout=TIMEOUT) as c:
            assert c.get("/readyz").json()["model"]["kind"] == "decision-tree"
            ok = c.post("/v1/score", json={"sessions": as_request(splits.test.head(2))})
            assert ok.status_code == 200 and len(ok.json()["sessions"]) == 2
            over = c.post("/v1/score", json={"sessions": as_request(splits.test.head(3))})
            assert over.status_code == 422 and "--max-sessions" in over.json()["detail"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "stopped" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()  # type: ignore[union-attr]


def test_serve_command_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from logsieve.cli import app as cli

    res = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    assert CliRunner().invoke(cli, ["serve", "--model", str(tmp_path), "--max-events", "0"]).exit_code == 2
