"""oneclass.finetune on a handful of real shared images, a few steps each (no timing asserts)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import oneclass
from oneclass.embed.base import EmbedderState
from oneclass.embed.finetune import finetune, holdout_split
from oneclass.embed.finetune_model import FinetunedEffNet
from oneclass.embed.registry import embedder_from_state

FAST = {"epochs": 2, "views": 1, "batch_size": 8, "progress": False}


@pytest.fixture(scope="module")
def pokemon(data_root):
    root = data_root / "pokemon_gen1"
    pos = sorted(str(p) for p in (root / "Pikachu").glob("*.jpg"))[:8]
    neg = sorted(str(p) for p in (root / "Gengar").glob("*.jpg"))[:8]
    return pos, neg


@pytest.fixture(scope="module")
def msc(pokemon):
    return finetune("effnet-lite0", pokemon[0], **FAST)


@pytest.fixture(scope="module")
def images(pokemon):
    return [Image.open(p).convert("RGB") for p in pokemon[0][:4] + pokemon[1][:4]]


def test_one_class_returns_a_working_embedder_that_does_not_collapse(msc, images):
    assert msc.kind == "image" and msc.dim == 1280 and msc.mode == "msc"
    assert msc.name.startswith("finetuned-effnet-lite0/msc/")
    X = msc.embed_array(images, progress=False)
    assert X.shape == (8, 1280) and np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)  # unit output
    # not collapsed: the images stay apart (a collapsed network maps all to one point)
    cos = X @ X.T
    assert cos[np.triu_indices(8, 1)].min() < 0.95
    assert X.std(axis=0).sum() > 1.0
    report = msc.fit_report_
    assert report["counts"]["positives"]["used"] == 8 and report["failures"] == {}
    assert len(report["history"]["loss"]) == 2 and np.isfinite(report["history"]["loss"]).all()


def test_positives_alone_warn_that_they_did_not_beat_the_frozen_network(pokemon, caplog):
    pos, neg = pokemon
    with caplog.at_level("WARNING", logger="oneclass.embed.finetune"):
        finetune("effnet-lite0", pos[:5], epochs=0, views=1, progress=False)
    assert any("auxiliary=" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="oneclass.embed.finetune"):
        finetune("effnet-lite0", pos[:5], auxiliary=neg[:5], epochs=0, views=1, progress=False)
    assert not caplog.records  # outlier exposure: nothing to warn about


def test_the_name_pins_the_weights(msc, pokemon):
    state = msc.get_state()
    tensors = {k: v.clone() for k, v in state.tensors.items()}
    key = next(k for k in tensors if k.startswith("top.") and tensors[k].is_floating_point())
    tensors[key] = tensors[key] + 1e-3
    changed = FinetunedEffNet.from_state(EmbedderState(config=state.config, tensors=tensors))
    assert changed.name != msc.name
    other_seed = finetune("effnet-lite0", pokemon[0], random_state=1, **FAST)
    assert other_seed.name != msc.name


def test_state_round_trip_gives_identical_vectors(msc, images):
    state = msc.get_state()
    assert state.config["kind"] == "finetuned-effnet"
    json.dumps(state.config)  # JSON, no objects
    assert all(isinstance(t, torch.Tensor) for t in state.tensors.values())
    back = embedder_from_state(state)
    assert isinstance(back, FinetunedEffNet) and back.name == msc.name
    np.testing.assert_array_equal(
        back.embed_array(images, progress=False), msc.embed_array(images, progress=False)
    )
    with pytest.raises(ValueError, match="kind"):
        FinetunedEffNet.from_state(EmbedderState(config={"kind": "clip"}, tensors={}))


def test_pipeline_round_trip_gives_identical_scores(msc, pokemon, tmp_path):
    pos, neg = pokemon
    model = oneclass.fit(msc, "knn", positives=pos, progress=False)
    model.save(tmp_path / "m")
    again = oneclass.load(tmp_path / "m")
    a, b = model.score(neg[:4] + pos[:2]), again.score(neg[:4] + pos[:2])
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())


def test_binary_mode_with_early_stopping_and_logistic(pokemon):
    pos, neg = pokemon
    emb = finetune("effnet-lite0", pos, neg, **FAST)
    assert emb.mode == "binary" and emb.output == "sqrt"
    counts = emb.fit_report_["counts"]
    assert counts["positives"]["held_out"] >= 1 and counts["negatives"]["held_out"] >= 1
    val = emb.fit_report_["history"]["val"]
    assert len(val) == 3 and all(0.0 <= v <= 1.0 for v in val[1:])  # held-out AUC per epoch
    model = oneclass.fit(emb, "logistic", positives=pos, negatives=neg, progress=False)
    df = model.score(pos[:3] + neg[:3])
    assert df["score"].notna().all()


def test_outlier_exposure_mode_trains_against_auxiliary_images(pokemon):
    """auxiliary without negatives: PANDA-OE (the auxiliary images are the loop's negatives),
    early-stopped on held-out positives vs held-out auxiliary images; a one-class detector
    then fits on the positives alone."""
    pos, neg = pokemon
    emb = finetune("effnet-lite0", pos, auxiliary=neg, **FAST)
    assert emb.mode == "oe" and emb.name.startswith("finetuned-effnet-lite0/oe/")
    counts = emb.fit_report_["counts"]
    assert "negatives" not in counts and counts["auxiliary"]["used"] == len(neg)
    assert counts["auxiliary"]["held_out"] >= 1 and counts["positives"]["held_out"] >= 1
    val = emb.fit_report_["history"]["val"]
    assert len(val) == 3 and all(0.0 <= v <= 1.0 for v in val[1:])
    model = oneclass.fit(emb, "knn", positives=pos, progress=False)
    assert model.score(neg[:2] + pos[:2])["score"].notna().all()
    with pytest.raises(ValueError, match="needs auxiliary"):
        finetune("effnet-lite0", pos, mode="oe")


def test_unreadable_auxiliary_images_are_named_as_such(pokemon, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="no readable auxiliary.*broken.jpg"):
        finetune("effnet-lite0", pokemon[0][:2], auxiliary=[str(bad)], progress=False)


def test_naive_positives_only_classifier_collapses(pokemon, images):
    """The seed question's failure, reproduced: trained on positives alone, the classifier's
    head calls Gengar a Pikachu too."""
    emb = finetune("effnet-lite0", pokemon[0], mode="naive", head_lr=0.05, **FAST)
    logits = emb.head_scores(images)
    assert (logits > 0).all()
    with pytest.raises(ValueError, match="head"):
        finetune("effnet-lite0", pokemon[0], epochs=1, views=1, progress=False).head_scores(
            images[:1]
        )


def test_bad_files_are_reported_not_replaced(pokemon, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    emb = finetune("effnet-lite0", pokemon[0][:4] + [str(bad)], epochs=1, views=1, progress=False)
    failures = emb.fit_report_["failures"]
    assert list(failures) == [str(bad)] and failures[str(bad)]
    assert emb.fit_report_["counts"]["positives"]["used"] == 4
    with pytest.raises(ValueError, match="no readable positives"):
        finetune("effnet-lite0", [str(bad)], progress=False)


def test_bad_arguments(pokemon):
    pos = pokemon[0][:2]
    with pytest.raises(ValueError, match="unknown option"):
        finetune("effnet-lite0", pos, learning_rate=1.0)
    with pytest.raises(ValueError, match="needs negatives"):
        finetune("effnet-lite0", pos, mode="binary")
    with pytest.raises(ValueError, match="base"):
        finetune("clip", pos)


def test_holdout_split_keeps_groups_together():
    class Item:
        def __init__(self, group):
            self.group = group

    items = [Item(f"g{i // 3}") for i in range(30)]
    mask = holdout_split(items, 0.2, np.random.default_rng(0))
    assert 0 < mask.sum() < 30
    for g in {it.group for it in items}:
        assert len({bool(m) for m, it in zip(mask, items, strict=True) if it.group == g}) == 1
    assert not holdout_split(items[:4], 0.2, np.random.default_rng(0)).any()


def test_cli_fit_finetune_with_auxiliary_saves_an_oe_model(pokemon, tmp_path):
    """`oneclass fit --finetune --auxiliary SRC`: outlier exposure from the command line; the
    saved model loads with its fine-tuned weights and scores like the fitted one."""
    from oneclass.cli import main

    pos_dir, aux_dir = tmp_path / "pos", tmp_path / "aux"
    for folder, files in ((pos_dir, pokemon[0][:6]), (aux_dir, pokemon[1][:6])):
        folder.mkdir()
        for p in files:
            (folder / os.path.basename(p)).write_bytes(open(p, "rb").read())
    out = tmp_path / "model"
    argv = ["-q", "fit", "--embedder", "effnet-lite0", "--detector", "knn:k=2"]
    argv += ["--positives", str(pos_dir), "--finetune", "--auxiliary", str(aux_dir)]
    assert main([*argv, "--no-cache", "--out", str(out)]) == 0
    model = oneclass.load(out)
    assert model.embedder_.mode == "oe"
    df = model.score([str(p) for p in sorted(aux_dir.iterdir())[:2]])
    assert (df["status"] == "ok").all() and df["score"].notna().all()
