"""Saved models: damaged, foreign or too-new files are refused clearly; nothing ever unpickles."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import oneclass
from oneclass import persist
from oneclass.persist import ARRAYS, HEADER, TENSORS, ModelFileError

PACKAGE = Path(oneclass.__file__).resolve().parent


@pytest.fixture(scope="module")
def vectors(cifar10_0):
    X, y = cifar10_0
    pos = X[y == 1]
    return pos[:200], pos[200:260]


@pytest.fixture()
def saved(vectors, tmp_path) -> Path:
    """A real fitted detector (knn on CIFAR10_0 airplanes), saved."""
    train, _ = vectors
    det = oneclass.make_detector("knn", k=3, random_state=0).fit(train)
    return det.save(tmp_path / "model")


def rewrite_header(path: Path, **changes) -> None:
    header = json.loads((path / HEADER).read_text())
    header.update(changes)
    (path / HEADER).write_text(json.dumps(header))


def test_layout_and_header(saved, vectors):
    assert sorted(p.name for p in saved.iterdir()) == [ARRAYS, HEADER]
    header = json.loads((saved / HEADER).read_text())
    assert header["format"] == persist.FORMAT
    assert header["format_version"] == persist.FORMAT_VERSION
    assert header["kind"] == "detector" and header["detector"] == "knn"
    assert header["params"]["k"] == 3
    assert {"python", "numpy", "scikit-learn"} <= set(header["versions"])
    digest = hashlib.sha256((saved / ARRAYS).read_bytes()).hexdigest()
    assert header["files"] == {ARRAYS: digest}
    loaded = oneclass.load(saved)
    _, test = vectors
    assert np.isfinite(loaded.score_samples(test)).all()


def test_tampered_arrays_are_refused(saved):
    data = bytearray((saved / ARRAYS).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the stored arrays
    (saved / ARRAYS).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{ARRAYS}: checksum mismatch"):
        oneclass.load(saved)


def test_truncated_arrays_are_refused(saved):
    data = (saved / ARRAYS).read_bytes()
    (saved / ARRAYS).write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="truncated or modified"):
        oneclass.load(saved)


def test_missing_arrays_file_is_refused(saved):
    (saved / ARRAYS).unlink()
    with pytest.raises(ModelFileError, match=f"{ARRAYS}: missing"):
        oneclass.load(saved)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not a oneclass model"):
        oneclass.load(tmp_path / "nowhere")


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    np.savez(tmp_path / ARRAYS, x=np.zeros(3))
    with pytest.raises(ModelFileError, match=f"not a oneclass model \\(no {HEADER}\\)"):
        oneclass.load(tmp_path)


def test_newer_format_version_asks_for_an_upgrade(saved):
    rewrite_header(saved, format_version=persist.FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match="newer than this oneclass reads.*upgrade"):
        oneclass.load(saved)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "unreadable JSON"),
        ('{"format": "something-else", "format_version": 1}', "not a oneclass-model file"),
        ("[1, 2, 3]", "not a oneclass-model file"),
        ('{"format": "oneclass-model", "format_version": "1"}', "format version"),
    ],
)
def test_foreign_or_broken_header(saved, text, match):
    (saved / HEADER).write_text(text)
    with pytest.raises(ModelFileError, match=match):
        oneclass.load(saved)


def test_header_naming_an_unknown_detector(saved):
    rewrite_header(saved, detector="no-such-detector")
    with pytest.raises(ValueError, match="unknown detector 'no-such-detector'; available: .*knn"):
        oneclass.load(saved)


def test_header_with_an_unknown_kind_or_missing_state(saved):
    rewrite_header(saved, kind="spaceship")
    with pytest.raises(ModelFileError, match="unknown model kind 'spaceship'"):
        oneclass.load(saved)
    header = json.loads((saved / HEADER).read_text())
    del header["state"]
    header["kind"] = "detector"
    (saved / HEADER).write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="incomplete model description"):
        oneclass.load(saved)


def test_header_listing_an_unexpected_file(saved):
    (saved / "extra.bin").write_bytes(b"\x00")
    header = json.loads((saved / HEADER).read_text())
    header["files"]["extra.bin"] = hashlib.sha256(b"\x00").hexdigest()
    (saved / HEADER).write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="unexpected file entry 'extra.bin'"):
        oneclass.load(saved)


def test_pickled_arrays_never_unpickle_even_with_a_matching_checksum(saved, tmp_path):
    """An attacker who rewrites both arrays.npz and its checksum still gets no code run."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    with open(saved / ARRAYS, "wb") as fh:
        np.savez(fh, **{"base/calibration_scores_": evil})
    assert b"pwned" in (saved / ARRAYS).read_bytes()  # the payload really is in the file
    digest = hashlib.sha256((saved / ARRAYS).read_bytes()).hexdigest()
    rewrite_header(saved, files={ARRAYS: digest})
    with pytest.raises(ValueError, match="allow_pickle"):
        oneclass.load(saved)
    assert not marker.exists()
    # a sanity check that the payload would have run if it had been unpickled
    with np.load(saved / ARRAYS, allow_pickle=True) as npz:
        npz["base/calibration_scores_"]
    assert marker.exists()


def test_tampered_safetensors_weights_are_refused(vectors, tmp_path):
    train, test = vectors
    det = oneclass.make_detector("deep-svdd", epochs=2, calibration_folds=0, random_state=0)
    path = det.fit(train[:60]).save(tmp_path / "svdd")
    assert (path / TENSORS).is_file()
    assert np.array_equal(oneclass.load(path).score_samples(test), det.score_samples(test))
    data = bytearray((path / TENSORS).read_bytes())
    data[-5] ^= 0xFF
    (path / TENSORS).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{TENSORS}: checksum mismatch"):
        oneclass.load(path)


def test_save_replaces_a_model_but_never_a_foreign_folder(vectors, saved, tmp_path):
    train, test = vectors
    det = oneclass.make_detector("knn", k=7).fit(train)
    assert det.save(saved) == saved  # replacing an existing model is fine
    loaded = oneclass.load(saved)
    assert loaded.k == 7
    assert np.array_equal(loaded.score_samples(test), det.score_samples(test))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"not mine to delete")
    with pytest.raises(FileExistsError, match="not a oneclass model"):
        det.save(foreign)
    assert (foreign / "cat.jpg").read_bytes() == b"not mine to delete"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left"


def test_unfitted_detector_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        oneclass.make_detector("knn").save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ---- guard: nothing in the package can unpickle ----------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "joblib", "dill", "cloudpickle", "shelve"}


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """Imports of pickling modules, ``torch.load`` without ``weights_only=True``, pickle-enabled
    ``np.load`` and ``read_pickle`` in one parsed module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, f"import {a.name}")
                for a in node.names
                if a.name.split(".")[0] in UNSAFE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value
            if func.endswith("torch.load") and not safe:
                found.append((node.lineno, f"{func}(...) without weights_only=True"))
            allow = kw.get("allow_pickle")
            if (
                func.endswith(".load")
                and not (isinstance(allow, ast.Constant) and allow.value is False)
                and allow is not None
            ):
                found.append((node.lineno, f"{func}(..., allow_pickle={ast.unparse(allow)})"))
            if func.endswith("read_pickle") or func.split(".")[0] in UNSAFE_MODULES:
                found.append((node.lineno, f"{func}(...)"))
    return found


def test_guard_recognises_unsafe_code():
    code = (
        "import pickle\nfrom joblib import load\nimport torch\n"
        "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\n"
        "torch.load('m.pt', weights_only=True)\nnp.load('a.npz', allow_pickle=True)\n"
        "np.load('a.npz', allow_pickle=False)\npd.read_pickle('x')\n"
    )
    lines = [line for line, _ in unsafe_calls(ast.parse(code))]
    assert sorted(set(lines)) == [1, 2, 4, 5, 7, 9]


def test_package_never_unpickles():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    problems = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
        for path in sources
        for line, what in unsafe_calls(ast.parse(path.read_text(), str(path)))
    ]
    assert not problems, "unsafe loading in the package:\n" + "\n".join(problems)


def test_format_1_models_still_load(saved, vectors):
    """Format 1 kept the state as ``state``/``base_state`` and arrays as ``det/``/``base/``."""
    _, test = vectors
    expected = oneclass.load(saved).score_samples(test)
    header = json.loads((saved / HEADER).read_text())
    state = header.pop("state")
    header.update(format_version=1, state=state["model"], base_state=state["calibration"])
    with np.load(saved / ARRAYS, allow_pickle=False) as npz:
        arrays = {
            k.replace("model/", "det/").replace("calibration/", "base/"): npz[k] for k in npz.files
        }
    np.savez(saved / ARRAYS, **arrays)
    header["files"] = {ARRAYS: hashlib.sha256((saved / ARRAYS).read_bytes()).hexdigest()}
    (saved / HEADER).write_text(json.dumps(header))
    np.testing.assert_array_equal(oneclass.load(saved).score_samples(test), expected)
