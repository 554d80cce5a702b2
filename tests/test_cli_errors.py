"""The command line's clear errors: bad specs before any image is embedded, unsafe --out
folders, empty inputs, broken pipes, report paths, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import oneclass
from oneclass.cli import build_parser, main
from oneclass.cli.report import output_paths
from oneclass.pipeline import Pipeline


@pytest.fixture
def photos(data_root, tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.fixture
def model(cifar10_0, tmp_path) -> Path:
    """A saved pipeline (effnet-lite0 + knn on ADBench vectors): enough to test `score` errors."""
    X, y = cifar10_0
    det = oneclass.make_detector("knn", k=3).fit(X[y == 1][:60])
    pipe = Pipeline("effnet-lite0", det)
    pipe.detector_, pipe.embedder_name_, pipe.fit_report_ = det, pipe.embedder_.name, {}
    return pipe.save(tmp_path / "model")


def fit_args(photos: Path, out: Path, cache: Path, **over: str) -> list[str]:
    args = {"--embedder": "effnet-lite0", "--detector": "knn", **over}
    flat = [x for kv in args.items() for x in kv]
    return [
        "-q",
        "fit",
        *flat,
        "--positives",
        str(photos),
        "--out",
        str(out),
        "--cache",
        str(cache),
    ]


@pytest.mark.parametrize(
    ("over", "extra", "match"),
    [
        ({"--embedder": "effnet-lite0:pow=0.5"}, [], "unknown parameter 'pow'"),
        ({"--detector": "knn:kk=3"}, [], "unknown parameter 'kk'"),
        ({"--detector": "nosuch"}, [], "unknown detector 'nosuch'"),
        ({"--embedder": 'clip:model="unclosed'}, [], "unclosed"),
        ({}, ["--target-fpr", "0.1"], "--target-fpr needs --negatives"),
        ({"--detector": "logistic"}, [], "binary baseline: give negatives"),
        ({}, ["--auxiliary", "x"], "--auxiliary is used only with --finetune"),
    ],
)
def test_bad_options_fail_before_any_image_is_embedded(
    photos, tmp_path, capsys, over, extra, match
):
    out, cache = tmp_path / "m", tmp_path / "cache"
    assert main(fit_args(photos, out, cache, **over) + extra) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()
    assert not cache.exists(), "images were embedded before the error"


def test_bad_values_fail_before_any_image_is_embedded(photos, tmp_path, capsys):
    from oneclass.detect.base import BaseDetector

    if not hasattr(BaseDetector, "validate_params"):
        pytest.skip("needs the detectors' public validate_params() (detect/base.py)")
    out, cache = tmp_path / "m", tmp_path / "cache"
    assert main(fit_args(photos, out, cache, **{"--detector": "knn:k=0"})) == 2
    assert "k" in capsys.readouterr().err
    assert not out.exists() and not cache.exists()


def test_fit_never_replaces_a_folder_that_is_not_a_model(photos, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    assert main(fit_args(photos, photos, cache)) == 2
    assert "not a oneclass model" in capsys.readouterr().err
    assert len(list(photos.iterdir())) == 5
    monkeypatch.chdir(photos)
    assert main(fit_args(photos, Path("."), cache)) == 2
    assert "working folder" in capsys.readouterr().err
    assert len(list(photos.iterdir())) == 5 and not cache.exists()


def test_score_on_an_empty_folder_says_so(model, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["-q", "score", "--model", str(model), str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no images found" in err and "Traceback" not in err


def test_maps_need_a_patch_embedder(model, photos, capsys):
    assert main(["-q", "score", "--model", str(model), str(photos), "--maps", "x"]) == 2
    assert "--maps needs a patch embedder" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneclass.cli", "datasets", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head` that has read enough
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("out", "md", "html_path", "md_path"),
    [
        ("r.html", None, "r.html", "r.md"),
        ("r.md", None, "r.html", "r.md"),
        ("x/r.html", "notes.md", "x/r.html", "notes.md"),
    ],
)
def test_report_paths_never_overwrite_the_html_with_markdown(out, md, html_path, md_path):
    html, markdown = output_paths(out, md)
    assert (html, markdown) == (Path(html_path), Path(md_path))


def test_report_refuses_one_file_for_both():
    from oneclass.cli.common import CliError

    with pytest.raises(CliError, match="would both be"):
        output_paths("r.html", "r.html")


def test_verbosity_flags():
    p = build_parser()
    assert p.parse_args(["-v", "datasets", "list"]).verbosity == 1
    assert p.parse_args(["-q", "datasets", "list"]).verbosity == -1
    assert p.parse_args(["datasets", "list"]).verbosity == 0


def test_unknown_command_modules_are_not_needed_to_start(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "oneclass.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0
    for cmd in ("fit", "score", "benchmark", "report", "datasets"):
        assert cmd in done.stdout
