"""The benchmark runner on real ADBench arrays (no embedding, seconds): resume refuses changed
protocol settings, corrupt cell files are named and re-run, failed cells give a non-zero status,
outputs are neutralised CSVs, and one cell runs the pipeline's aggregation path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oneclass.bench.results import FAILURE_COLUMNS, SCORE_COLUMNS, RunDir
from oneclass.bench.runner import ResumeError, run_status, run_suite
from oneclass.bench.suite import Suite, SuiteError

SUITE = """
name: tiny-adbench
protocol: adbench
sets: [14_glass, 45_wine]
detectors: [knn, "knn:k=1"]
seeds: [0]
bootstrap: 50
"""


@pytest.fixture
def suite_file(tmp_path, data_root) -> Path:
    f = tmp_path / "tiny.yaml"
    f.write_text(SUITE)
    return f


def test_resume_skips_done_cells_and_allows_new_detectors(suite_file, tmp_path):
    run = run_suite(suite_file, tmp_path / "run", progress=False)
    assert run.run_info()["cells"] == {"done": 4, "skipped": 0, "failed": 0, "rows": 8}
    suite_file.write_text(SUITE.replace('"knn:k=1"]', '"knn:k=1", "knn:k=3"]'))
    run = run_suite(suite_file, tmp_path / "run", progress=False)
    assert run.run_info()["cells"] == {"done": 2, "skipped": 4, "failed": 0, "rows": 12}
    assert run_status(run) == 0


def test_resume_refuses_a_changed_protocol_setting_and_names_it(suite_file, tmp_path):
    run_suite(suite_file, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "results.csv").read_text()
    suite_file.write_text(SUITE.replace("bootstrap: 50", "bootstrap: 80"))
    with pytest.raises(ResumeError, match=r"tiny-adbench: bootstrap: 50 -> 80"):
        run_suite(suite_file, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "results.csv").read_text() == before  # nothing mixed in
    # a run folder written before fingerprints existed: compared through its recorded config
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    del info["protocol_settings"], info["fingerprints"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(info))
    with pytest.raises(ResumeError, match=r"bootstrap: 50 -> 80"):
        run_suite(suite_file, tmp_path / "run", progress=False)
    # a new folder is a new run
    assert run_suite(suite_file, tmp_path / "new", progress=False).run_info()["cells"]["done"] == 4


def test_corrupt_cell_file_is_named_and_run_again(suite_file, tmp_path, caplog):
    run_suite(suite_file, tmp_path / "run", progress=False)
    cell = sorted((tmp_path / "run" / "cells").glob("*.json"))[0]
    cell.write_text(cell.read_text()[:40])  # truncated mid-write
    with caplog.at_level(logging.WARNING, logger="oneclass"):
        run = run_suite(suite_file, tmp_path / "run", progress=False)
    assert str(cell) in caplog.text and "JSONDecodeError" in caplog.text
    info = run.run_info()
    assert info["corrupt_cells_rerun"] == [str(cell)]
    assert info["cells"] == {"done": 1, "skipped": 3, "failed": 0, "rows": 8}
    assert json.loads(cell.read_text())["rows"][0]["status"] == "ok"


def test_failed_cells_give_a_non_zero_status(suite_file, tmp_path, capsys):
    from oneclass.cli import main

    suite_file.write_text(SUITE.replace('"knn:k=1"]', '"knn:k=5000"]'))
    run = run_suite(suite_file, tmp_path / "run", progress=False)
    res = pd.read_csv(run.path / "results.csv")
    failed = res[res.status == "failed"]
    assert set(failed.detector) == {"knn:k=5000"} and failed.error.str.contains("5000").all()
    assert run_status(run) == 1
    assert (
        main(["-q", "benchmark", str(suite_file), "--out", str(tmp_path / "cli"), "--no-report"])
        == 1
    )


def test_outputs_are_atomic_and_formula_cells_neutralised(tmp_path):
    rd = RunDir(tmp_path / "run").create()
    rd.append_csv(
        "failures.csv",
        [
            {
                "suite": "s",
                "embedder": "e",
                "item_id": "=1+1.jpg",
                "uri": "@SUM(A1).jpg",
                "stage": "decode",
                "reason": "-bad",
            }
        ],
        FAILURE_COLUMNS,
    )
    scores = pd.DataFrame(
        {
            "item_id": ["+cmd.jpg"],
            "uri": ['=HYPERLINK("x").jpg'],
            "label": [1],
            "family": ["positive"],
            "score": [-0.5],
            "n_faces": [1],
            "status": ["ok"],
        }
    )
    rd.finish_cell("c-1", [{"cell": "c-1", "suite": "s", "status": "ok"}], scores)
    fail_text = (rd.path / "failures.csv").read_text()
    assert "'=1+1.jpg" in fail_text and "'@SUM" in fail_text and "'-bad" in fail_text
    score_text = (rd.path / "scores" / "c-1.csv").read_text()
    assert "'+cmd.jpg" in score_text and "'=HYPERLINK" in score_text
    assert ",-0.5," in score_text  # numbers are not touched
    assert not list(rd.path.rglob("*.tmp"))  # no temp files left behind
    from oneclass.report.runs import load_run

    rd.consolidate()
    back = load_run(rd.path).scores("c-1")  # the report reads the real names back
    assert back["uri"].iloc[0] == '=HYPERLINK("x").jpg' and back["item_id"].iloc[0] == "+cmd.jpg"
    assert list(back.columns) == SCORE_COLUMNS


def test_a_cell_scores_through_the_pipeline_aggregation(data_root):
    """A patch-kind cell: every patch trains, the least in-class patches score the image, and the
    gallery candidates keep their per-patch scores (the anomaly maps)."""
    from oneclass.bench.embeddings import CellVectors
    from oneclass.bench.job import Job, run_job
    from oneclass.bench.protocols import Task, Work
    from oneclass.data.adbench import load_adbench
    from oneclass.data.sources import ImageItem
    from oneclass.detect.registry import make_detector
    from oneclass.embed.base import ImageEmbedding

    X, y = load_adbench("45_wine")
    X = X[: len(X) // 4 * 4].astype(np.float32)
    y = y[: len(X)]
    n = len(X) // 4  # four rows of the set make the 2x2 patches of one "image"
    items = [ImageItem(f"img{i}", f"mem:{i}") for i in range(n)]
    embs = {it.uri: ImageEmbedding(X[4 * i : 4 * i + 4], grid=(2, 2)) for i, it in enumerate(items)}
    label = np.array([int(y[4 * i : 4 * i + 4].all()) for i in range(n)])
    train = np.flatnonzero(label == 1)[:10]
    test = np.setdiff1d(np.arange(n), train)
    task = Task(
        "main",
        "all",
        ["knn:k=1"],
        train,
        test,
        label[test],
        np.where(label[test] == 1, "positive", "anomaly"),
        None,
        "first ten",
    )
    work = Work(0, items, task, CellVectors("patches", "patch", embs))
    out = run_job(Job("c", {"cell": "c"}, work, "knn:k=1", 50, 0))
    assert not out.failed and out.scores is not None
    det = make_detector("knn:k=1", calibration_folds=0, random_state=0)
    det.fit(np.vstack([embs[items[i].uri].vectors for i in train]).astype(np.float64))
    want = [det.score_samples(embs[items[i].uri].vectors.astype(np.float64)).min() for i in test]
    np.testing.assert_allclose(out.scores["score"], want, rtol=1e-6)
    assert out.rows[0]["n_train"] == 10 and out.maps
    first = min(out.maps)
    assert out.maps[first].shape == (2, 2)


# -- suites are checked before anything runs ------------------------------------------------------
def _load(tmp_path: Path, text: str) -> Suite:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return Suite.load(f)


def test_yaml_alias_bomb_is_refused(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, k in enumerate("bcdefghi"):
        prev = "abcdefgh"[i]
        lines.append(
            f"{k}: &{k} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    text = "\n".join(lines) + "\nname: bomb\nprotocol: adbench\nsets: [x]\ndetectors: [*i]\n"
    assert len(text) < 600  # 9 ** 9 strings once expanded
    with pytest.raises(SuiteError, match=r"s.yaml: invalid YAML .*alias \*a is not allowed"):
        _load(tmp_path, text)


def test_types_and_unknown_keys_are_errors_naming_the_file(tmp_path):
    base = "name: t\nprotocol: adbench\nsets: [x]\n"
    with pytest.raises(
        SuiteError,
        match=r"s.yaml: detectors: expected a list, got str 'knn' "
        r"\(write \[knn\]\)",
    ):
        _load(tmp_path, base + "detectors: knn\n")
    with pytest.raises(SuiteError, match=r"s.yaml: unknown keys \['bootstrp'\]"):
        _load(tmp_path, base + "detectors: [knn]\nbootstrp: 10\n")
    with pytest.raises(SuiteError, match=r"s.yaml: seeds\[1\]: expected an integer"):
        _load(tmp_path, base + "detectors: [knn]\nseeds: [0, one]\n")
    with pytest.raises(SuiteError, match=r"split.test_size: expected a number between 0 and 1"):
        _load(
            tmp_path,
            "name: t\nprotocol: positives-vs-families\ndetectors: [knn]\n"
            "positives: {dataset: a}\nnegatives: {b: {dataset: b}}\n"
            "split: {test_size: 50}\n",
        )
    with pytest.raises(SuiteError, match=r"negatives.b: unknown keys \['datset'\]"):
        _load(
            tmp_path,
            "name: t\nprotocol: positives-vs-families\ndetectors: [knn]\n"
            "positives: {dataset: a}\nnegatives: {b: {datset: b}}\n",
        )


def test_specs_are_built_up_front(tmp_path):
    from oneclass.bench.runner import Runner
    from oneclass.bench.specs import check_specs

    base = "name: t\nprotocol: adbench\nsets: [x]\n"
    with pytest.raises(SuiteError, match=r"s.yaml: t: detectors: detector 'knnn'"):
        check_specs(_load(tmp_path, base + "detectors: [knnn]\n"))
    with pytest.raises(SuiteError, match=r"detector 'knn:kk=3'.*kk"):
        check_specs(_load(tmp_path, base + "detectors: ['knn:kk=3']\n"))
    with pytest.raises(SuiteError, match=r"embedders\[0\]: embedder 'effnet-lite0:colour=1'"):
        check_specs(
            _load(tmp_path, base + "detectors: [knn]\nembedders: ['effnet-lite0:colour=1']\n")
        )
    with pytest.raises(SuiteError, match=r"unknown fine-tuning option\(s\) \['epoch'\]"):
        check_specs(
            _load(
                tmp_path,
                base + "detectors: [knn]\nembedders: ['finetune:base=effnet-lite0,epoch=2']\n",
            )
        )
    suite = _load(tmp_path, base + "detectors: [knn, mahalanobis]\n")
    with pytest.raises(SuiteError, match=r"--detectors knnn: not a detector of .*knn, mahalanobis"):
        Runner(suite, tmp_path / "run", detectors=["knnn"])
    assert not (tmp_path / "run").exists()  # refused before anything was written
