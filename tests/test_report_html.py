"""The study's one-page HTML report: built from the study folder alone, self-contained, escaped, renderable."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.table import write_sessions

runner = CliRunner()
TINY = ["--set", "train.epochs=3", "--set", "data.max_len=64", "--set", "model.hidden_size=8",
        "--set", "model.embed_dim=4", "--no-progress", "--jobs", "1"]  # fmt: skip
HEADINGS = (
    "Summary",
    "Comparison: test split",
    "Comparison: unseen sequences",
    "Precision–recall curves",
    "Confusion matrices",
    "Training curves",
    "Paired record",
    "Label conflicts",
    "Label noise",
)


class Page(HTMLParser):
    """The parts of the page the tests look at: headings, table rows per section, images, every link."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self._section = ""
        self._tag: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._tag.append(tag)
        if tag == "section":
            self._section = a.get("id") or ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key) is not None:
                self.links.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if self._tag:
            self._tag.pop()
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self._section, []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._tag and self._tag[-1] == "h2":
            self.headings.append(data.strip())
        if self._cell is not None:
            self._cell.append(data)

    def first_column(self, section: str) -> list[str]:
        return [row[1] for row in self.rows.get(section, [])[1:]]


@pytest.fixture(scope="module")
def study(tmp_path_factory, simulated) -> Path:
    """One preset, two random splits (so paired records exist), every count model; ~20 s."""
    data = write_sessions(simulated.head(1500), tmp_path_factory.mktemp("data") / "sessions.csv")
    out = tmp_path_factory.mktemp("study") / "study"
    res = runner.invoke(app, ["study", "--data", str(data), "--presets", "baseline", "--seeds", "1",
                              "--splits", "2", "--out", str(out), *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_page_holds_every_model_and_section_with_embedded_pngs_only(study):
    text = (study / "report.html").read_text()
    page = Page(text)
    assert page.headings == list(HEADINGS)
    results = pl.read_csv(study / "results.csv")
    models = results["name"].unique().to_list()
    assert len(models) >= 10 and "baseline" in models
    for section in ("cmp-test", "cmp-unseen"):
        assert sorted(page.first_column(section)) == sorted(models), section
    # every figure is an inline PNG that decodes; nothing on the page points outside it, and no script runs
    assert len(page.images) == 3  # PR curves, confusion matrices, training curves
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.size[0] > 500 and im.size[1] > 200
    assert all(link.startswith(("data:", "#")) for link in page.links)
    assert "http://" not in text and "https://" not in text and page.scripts == 0
    # K = 2 splits: a paired record against the best count baseline, for every other model
    record = json.loads((study / "study.json").read_text())
    paired = page.rows["paired"]
    assert {row[0] for row in paired[1:]} == set(models) - {record["paired"]["reference"]}
    assert "No paired record" not in text and "No label-noise runs" in text
    conflicts = page.rows["conflicts"]
    assert conflicts[1][0] == "same event counts" and len(conflicts) == 3 + 3  # both twins, then both splits
    # the summary names the best mean test F1 as the table's first row does
    first = page.rows["cmp-test"][1]
    summary_f1 = next(row for row in page.rows["summary"] if row[0] == "F1")
    assert first[1] in summary_f1[1] and summary_f1[2].startswith(first[7].split("±")[0].strip())


def test_every_run_stores_its_test_scores_exactly(study):
    """test_scores.parquet of every run (RNN and count models) gives back the run's own PR-AUC."""
    runs = [p.parent for p in (study / "runs").rglob("metrics.json")]
    assert len(runs) == pl.read_csv(study / "results.csv").height
    for run in runs:
        scores = pl.read_parquet(run / "test_scores.parquet")
        metrics = json.loads((run / "metrics.json").read_text())
        assert scores.columns == ["session_id", "label", "score"] and scores.height == metrics["n"], run
        assert scores["session_id"].n_unique() == scores.height
        y, s = scores["label"].to_numpy(), scores["score"].to_numpy()
        assert average_precision_score(y, s) == pytest.approx(metrics["pr_auc"], abs=1e-12), run
        assert int(((s >= metrics["threshold"]) & (y == 1)).sum()) == metrics["confusion"][1][1], run


def test_report_cli_rebuilds_the_same_page_and_refuses_other_folders(study, tmp_path):
    res = runner.invoke(app, ["report", str(study), "--out", str(tmp_path / "again.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "again.html").read_text() == (study / "report.html").read_text()  # deterministic
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "not a study folder" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "report.html").exists()


def test_missing_parts_are_said_and_data_strings_are_escaped(study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    record = json.loads((copy / "study.json").read_text())
    evil = '<img src="https://x.invalid/a.png" onerror=alert(1)>&'
    record["data"]["source"] = evil
    del record["paired"]
    (copy / "study.json").write_text(json.dumps(record))
    for scores in (copy / "runs" / "decision-tree").rglob("test_scores.parquet"):
        scores.unlink()
    for history in (copy / "runs" / "baseline").rglob("history.csv"):
        history.unlink()
    res = runner.invoke(app, ["report", str(copy)])
    assert res.exit_code == 0, res.output
    text = (copy / "report.html").read_text()
    page = Page(text)
    assert evil not in text and "&lt;img src=&quot;https://x.invalid" in text
    assert all(link.startswith(("data:", "#")) for link in page.links)
    assert "No paired record: one split" in text
    assert "No stored test scores for: decision-tree" in text
    assert "No training curves" in text and len(page.images) == 2
    assert page.headings == list(HEADINGS)


def test_label_noise_table_from_the_study_record():
    from logsieve.evaluation.noise import noise_records
    from logsieve.evaluation.report_sections import noise_section

    rows = pl.DataFrame({
        "name": ["tree", "tree", "tree", "tree", "rnn", "rnn"], "kind": ["baseline"] * 4 + ["rnn"] * 2,
        "noise": [0.0, 0.0, 0.05, 0.05, 0.0, 0.05], "f1": [0.9, 0.8, 0.7, 0.5, 0.95, 0.6],
        "f1_unseen": [0.5, 0.5, 0.4, None, 0.6, 0.3],
    })  # fmt: skip
    page = Page("<section id='noise'>" + noise_section({"label_noise": noise_records(rows)}) + "</section>")
    head, *body = page.rows["noise"]
    assert head == ["model", "F1 @ 0", "F1 unseen @ 0", "F1 @ 0.05", "F1 unseen @ 0.05"]
    assert [row[0] for row in body] == ["rnn", "tree"]  # by F1 at the first rate
    assert body[1][1].replace(" ", "") == "0.8500±0.0707" and body[1][3].replace(" ", "") == "0.6000±0.1414"
    assert body[0][1] == "0.9500"  # one run: no sd


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (CI installs it via .ci/run)")
def test_page_renders_in_headless_chromium(study, tmp_path):
    """Every image decodes in a real browser (naturalWidth > 0) and the tables are in the rendered DOM."""
    probe = (
        "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.body.dataset.images=i.length;"
        "document.body.dataset.loaded=i.filter(x=>x.complete&&x.naturalWidth>0).length;});</script></body>"
    )
    page = tmp_path / "probe.html"
    page.write_text((study / "report.html").read_text().replace("</body>", probe))
    chrome = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]  # fmt: skip
    dom = subprocess.run([*chrome, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Page(dom.stdout)
    assert 'data-images="3"' in dom.stdout and 'data-loaded="3"' in dom.stdout
    models = pl.read_csv(study / "results.csv")["name"].unique().to_list()
    assert sorted(rendered.first_column("cmp-test")) == sorted(models)
    shot = tmp_path / "page.png"
    subprocess.run([*chrome, f"--screenshot={shot}", "--window-size=1400,3000", (study / "report.html").as_uri()],
                   capture_output=True, timeout=180, check=True)  # fmt: skip
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (3000, 1400)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # text, tables and plots, not a blank page
