"""Saved models from strangers: every hostile field or file is refused, naming file and field.

The model folders are real (a knn fitted on ADBench CIFAR10_0 vectors inside an effnet-lite0
pipeline), then edited the way an attacker would, with checksums recomputed to match.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import oneclass
from oneclass.data.hashing import sha256_file
from oneclass.persist import (
    ARRAYS,
    EMBEDDER_CONFIG,
    EMBEDDER_TENSORS,
    HEADER,
    TENSORS,
    ModelFileError,
    check_model_target,
)
from oneclass.pipeline import Pipeline


@pytest.fixture(scope="module")
def detector(cifar10_0):
    X, y = cifar10_0
    return oneclass.make_detector("knn", k=3, random_state=0).fit(X[y == 1][:120])


def saved_pipeline(detector, path: Path, spec: str = "effnet-lite0") -> Path:
    pipe = Pipeline(spec, detector, progress=False)
    pipe.detector_, pipe.embedder_name_, pipe.fit_report_ = detector, pipe.embedder_.name, {}
    return pipe.save(path)


@pytest.fixture
def model(detector, tmp_path) -> Path:
    return saved_pipeline(detector, tmp_path / "model")


def edit_header(path: Path, **changes) -> None:
    header = json.loads((path / HEADER).read_text())
    header.update(changes)
    (path / HEADER).write_text(json.dumps(header))


def relist(path: Path, *names: str) -> None:
    """Record the checksums of ``names`` (and refresh the others), as an attacker would."""
    header = json.loads((path / HEADER).read_text())
    for name in names:
        header["files"][name] = ""
    header["files"] = {n: sha256_file(path / n) for n in header["files"]}
    (path / HEADER).write_text(json.dumps(header))


def test_a_clean_model_loads(model):
    pipe = oneclass.load(model)
    assert isinstance(pipe, Pipeline) and pipe.embedder_spec == "effnet-lite0"
    assert pipe.no_face_score == -np.inf and pipe.target_fpr is None


@pytest.mark.parametrize(
    "spec",
    [
        "clip:allow_download=true,model=evil/repo,backend=transformers",
        "clip:cache_dir=/tmp/evil",
        "facenet:allow_download=true",
        'clip:model="x",download_root=/tmp',
    ],
)
def test_a_model_never_turns_on_downloads(model, spec):
    edit_header(model, embedder=spec)
    with pytest.raises(
        ModelFileError, match=f"{HEADER}.*field 'embedder'.*may not enable downloads"
    ):
        oneclass.load(model)


def test_saving_drops_download_and_runtime_options(detector, tmp_path):
    path = saved_pipeline(detector, tmp_path / "m", "effnet-lite0:batch_size=4,power=0.5")
    header = json.loads((path / HEADER).read_text())
    assert header["embedder"] == "effnet-lite0:power=0.5"
    pytest.importorskip("open_clip")
    pipe = Pipeline("clip:allow_download=true,cache_dir=/tmp/x,model=ViT-B-16", detector)
    from oneclass.pipeline_saved import spec_for_saving

    assert spec_for_saving(pipe.embedder, pipe.embedder_) == "clip:model=ViT-B-16"


def test_the_user_may_pass_download_options_at_load_time(model):
    pipe = oneclass.load(model, embedder_options={"batch_size": 3})
    assert pipe.embedder_.batch_size == 3


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("no_face_score", "inf", "no_face_score"),
        ("no_face_score", "nan", "no_face_score"),
        ("no_face_score", [1], "no_face_score"),
        ("target_fpr", 1.5, "target_fpr"),
        ("target_fpr", -0.1, "target_fpr"),
        ("target_fpr", "nan", "target_fpr"),
        ("embedder", "no-such-embedder", "unknown embedder"),
        ("embedder", "effnet-lite0:bogus=1", "unknown parameter 'bogus'"),
        ("embedder", 42, "field 'embedder'"),
        ("embedder_name", None, "embedder_name"),
    ],
)
def test_out_of_range_fields_are_refused(model, field, value, match):
    edit_header(model, **{field: value})
    with pytest.raises(ModelFileError, match=f"{HEADER}.*{match}"):
        oneclass.load(model)


def test_nan_and_infinity_literals_in_the_json_are_refused(model):
    text = (model / HEADER).read_text()
    header = json.loads(text)
    header["state"]["calibration"]["threshold_"] = 12345.678
    text = json.dumps(header).replace("12345.678", "NaN")
    (model / HEADER).write_text(text)
    with pytest.raises(ModelFileError, match=f"{HEADER}: unreadable JSON.*NaN is not allowed"):
        oneclass.load(model)


def test_a_threshold_given_as_a_nan_string_is_refused(model):
    header = json.loads((model / HEADER).read_text())
    header["state"]["calibration"]["threshold_"] = "nan"
    (model / HEADER).write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=f"{HEADER}.*threshold_"):
        oneclass.load(model)


def test_nan_in_the_arrays_is_refused(model):
    with np.load(model / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = next(k for k in arrays if k.endswith("calibration_scores_"))
    arrays[key] = arrays[key].copy()
    arrays[key][3] = np.nan
    np.savez(model / ARRAYS, **arrays)
    relist(model)
    with pytest.raises(ModelFileError, match="calibration_scores_"):
        oneclass.load(model)


def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def test_a_small_npz_that_would_expand_to_gigabytes_is_refused(model):
    n = 25_000_000  # 200 MB of float64 zeros, about 0.2 MB deflated
    with zipfile.ZipFile(model / ARRAYS, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("model/bomb.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header((n,)))
            chunk = bytes(1 << 22)
            for _ in range(n * 8 // len(chunk)):
                fh.write(chunk)
    assert (model / ARRAYS).stat().st_size < 2_000_000
    relist(model)
    with pytest.raises(
        ModelFileError, match=f"{ARRAYS}: its members declare .* bytes uncompressed.*refused"
    ):
        oneclass.load(model)


def test_an_array_header_that_lies_about_its_size_is_refused(model):
    with zipfile.ZipFile(model / ARRAYS, "w") as zf:
        zf.writestr(
            "calibration/calibration_scores_.npy", _npy_header((10**9,)) + np.zeros(4).tobytes()
        )
    relist(model)
    with pytest.raises(
        ModelFileError, match="member 'calibration/calibration_scores_.npy': header says"
    ):
        oneclass.load(model)


def test_a_safetensors_header_larger_than_its_file_is_refused(model):
    (model / TENSORS).write_bytes((2**40).to_bytes(8, "little") + b"{}")
    relist(model, TENSORS)
    with pytest.raises(
        ModelFileError, match=f"{TENSORS}: safetensors header of .* bytes does not fit"
    ):
        oneclass.load(model)


def test_a_safetensors_tensor_outside_its_file_is_refused(model):
    header = json.dumps(
        {"model/w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}
    ).encode()
    (model / TENSORS).write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    relist(model, TENSORS)
    with pytest.raises(ModelFileError, match="tensor 'model/w': byte range"):
        oneclass.load(model)


@pytest.mark.parametrize("version", [0, -1, True, "2", 1.5])
def test_format_versions_that_are_not_versions(model, version):
    edit_header(model, format_version=version)
    with pytest.raises(ModelFileError, match="format version"):
        oneclass.load(model)


def test_an_embedder_state_naming_an_unregistered_kind_is_refused(model):
    (model / EMBEDDER_CONFIG).write_text(json.dumps({"kind": "os:system", "cmd": "rm -rf ~"}))
    relist(model, EMBEDDER_CONFIG)
    with pytest.raises(ModelFileError, match="'os:system' is not a registered embedder"):
        oneclass.load(model)


def test_files_not_listed_with_a_checksum_are_refused(model):
    (model / EMBEDDER_TENSORS).write_bytes(b"\x00" * 16)
    with pytest.raises(ModelFileError, match=f"{EMBEDDER_TENSORS}: not listed"):
        oneclass.load(model)


# ---- where a model may be written -------------------------------------------------------------
def test_only_exactly_a_model_may_be_replaced(model, detector, tmp_path, monkeypatch):
    assert check_model_target(model) == model  # our own model: fine
    assert check_model_target(tmp_path / "new") == tmp_path / "new"
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="not a oneclass model.*cat.jpg"):
        saved_pipeline(detector, photos)
    assert (photos / "cat.jpg").read_bytes() == b"mine"
    (model / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match="notes.txt"):
        saved_pipeline(detector, model)
    assert (model / "notes.txt").read_text() == "my notes"
    monkeypatch.chdir(photos)
    for here in (".", "..", os.getcwd()):
        with pytest.raises(FileExistsError, match="working folder"):
            check_model_target(here)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        check_model_target(tmp_path / "file")


def test_replacing_a_model_is_atomic(model, detector, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    saved_pipeline(detector, model, "effnet-lite0:power=0.5")
    assert json.loads((model / HEADER).read_text())["embedder"] == "effnet-lite0:power=0.5"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp folders left
