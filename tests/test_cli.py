"""The command line on real shared images: fit, score (with a no-face and a corrupt file),
benchmark (with a failing cell, then resumed), report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from oneclass.cli import main


@pytest.fixture
def cage(data_root):
    crops = sorted((data_root / "niccage" / "crops").glob("*.jpg"))
    assert len(crops) > 40
    return crops


def test_fit_then_score_reports_every_image(tmp_path, data_root, cage, capsys):
    listing = tmp_path / "positives.txt"
    listing.write_text("\r\n".join(str(p) for p in cage[:24]) + "\r\n")
    model = tmp_path / "model"
    assert (
        main(
            [
                "-q",
                "fit",
                "--embedder",
                "dlib-face",
                "--detector",
                "knn:k=3",
                "--positives",
                str(listing),
                "--out",
                str(model),
            ]
        )
        == 0
    )
    header = json.loads((model / "oneclass.json").read_text())
    assert header["kind"] == "pipeline" and header["embedder"] == "dlib-face"

    new = tmp_path / "new"
    new.mkdir()
    for p in cage[30:33]:
        shutil.copy(p, new / f"cage_{p.name}")
    shutil.copy(sorted((data_root / "faces" / "trump").glob("*.jpg"))[0], new / "trump.jpg")
    shutil.copy(
        data_root / "generic" / "bsds500" / "test" / "100007.jpg"
        if (data_root / "generic" / "bsds500" / "test" / "100007.jpg").exists()
        else sorted((data_root / "generic" / "bsds500").rglob("*.jpg"))[0],
        new / "landscape.jpg",
    )
    (new / "corrupt.jpg").write_bytes(cage[0].read_bytes()[:300])
    (new / "page.jpg").write_text("<html><body>not an image</body></html>")
    shutil.copy(cage[34], new / "=1+1.jpg")  # a spreadsheet formula as a file name
    out = tmp_path / "scores.csv"
    assert main(["-q", "score", "--model", str(model), str(new), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert df["id"].str.startswith("'=").sum() == 1  # neutralised, not a formula
    assert df["path"].str.startswith("=").sum() == 0
    df["name"] = df["path"].map(lambda p: p.rsplit("/", 1)[-1])
    df = df.set_index("name")
    assert {"path", "score", "p_value", "in_class", "status", "box"} <= set(df.columns)
    assert len(df) == 8
    assert df.loc["corrupt.jpg", "status"].startswith("failed:")
    assert df.loc["page.jpg", "status"].startswith("failed:")
    assert pd.isna(df.loc["corrupt.jpg", "score"])
    cages = df[df.index.str.startswith("cage_")]
    assert (cages["status"] == "ok").all() and cages["box"].notna().all()
    assert cages["score"].min() > df.loc["trump.jpg", "score"]
    if df.loc["landscape.jpg", "status"] == "no_face":
        assert df.loc["landscape.jpg", "score"] == float("-inf")
        assert df.loc["landscape.jpg", "in_class"] == 0
        assert pd.isna(df.loc["landscape.jpg", "p_value"])  # not tested, so no p-value
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


SUITE = """
name: tiny
protocol: positives-vs-families
positives: {dataset: niccage, sample: 40}
negatives:
  trump: {dataset: trump, sample: 30}
  bsds500: {source: BSDS}
split: {test_size: 0.5}
embedders: [effnet-lite0]
detectors: [knn, mahalanobis, "knn:k=500"]
baselines: {detectors: [logistic], train_families: [trump]}
fewshot: [5]
seeds: [0]
bootstrap: 100
"""


def test_benchmark_resumes_and_reports(tmp_path, data_root, capsys):
    bsds = tmp_path / "bsds"
    bsds.mkdir()
    for p in sorted((data_root / "generic" / "bsds500").rglob("*.jpg"))[:12]:
        shutil.copy(p, bsds / p.name)
    (bsds / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE.replace("BSDS", str(bsds)))
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["-q", "benchmark", str(suite), "--out", str(run), "--cache", str(cache)]
    assert main(args) == 1  # a failed cell (knn:k=500) is not a success
    res = pd.read_csv(run / "results.csv")
    ok = res[res.status == "ok"]
    assert set(ok.detector) == {"knn", "mahalanobis", "logistic"}
    failed = res[res.status == "failed"]
    assert set(failed.detector) == {"knn:k=500"} and failed.error.str.contains("k").all()
    main_all = ok[(ok.setting == "main") & (ok.family == "all")]
    assert ((main_all.auc_lo <= main_all.auc) & (main_all.auc <= main_all.auc_hi)).all()
    assert set(ok.family) == {"all", "trump", "bsds500"}
    assert (ok[ok.setting == "fewshot"].n_train == 5).all()
    failures = pd.read_csv(run / "failures.csv")
    assert failures.uri.str.endswith("broken.jpg").any()
    info = json.loads((run / "run.json").read_text())
    assert info["cells"]["failed"] == len(failed) and info["git_revision"]
    assert (run / "report.html").stat().st_size > 10_000
    assert "knn" in (run / "report.md").read_text()

    assert main(args + ["--no-report"]) == 1  # resumed: finished cells skipped, failed retried
    info2 = json.loads((run / "run.json").read_text())
    assert info2["cells"]["done"] == 0 and info2["cells"]["skipped"] == info["cells"]["done"]
    assert info2["cells"]["failed"] == len(failed)
    assert len(pd.read_csv(run / "results.csv")) == len(res)

    out = tmp_path / "compare.html"
    assert main(["report", str(run), str(run), "--out", str(out)]) == 0
    assert out.exists() and out.with_suffix(".md").exists()


def test_entry_point_and_clear_errors(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "oneclass.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "benchmark" in done.stdout
    assert main(["score", "--model", str(tmp_path / "nope"), str(tmp_path)]) == 2
