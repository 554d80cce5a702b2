"""clip-prompt detector and Fusion: scores, thresholds, persistence, end to end with a CLIP."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from oneclass import load, make_detector
from oneclass.detect.clip_prompt import ClipPrompt
from oneclass.detect.fusion import Fusion
from oneclass.embed.clip import ClipEmbedder
from oneclass.embed.clip_random import save_random_clip

DIM = 32


def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def space():
    """A CLIP-like space: in-class images near the prompt's text vector (and a cluster),
    two kinds of negatives that share one of the two traits."""
    rng = np.random.default_rng(0)
    t, other, cluster = (_unit(rng.normal(size=DIM)) for _ in range(3))

    def sample(n, text, clus):
        return _unit(text + clus + 0.35 * rng.normal(size=(n, DIM)))

    pos = sample(80, t, cluster)
    train, held_out, test_pos = pos[:30], pos[30:50], pos[50:]
    neg_text = sample(30, t, -cluster)  # looks like the prompt, not like the training photos
    neg_clus = sample(30, other, cluster)  # looks like the training photos, not the prompt
    X_test = np.vstack([test_pos, neg_text, neg_clus])
    y_test = np.r_[np.ones(30), np.zeros(60)].astype(int)
    return {
        "t": t,
        "other": other,
        "train": train,
        "held_out": held_out,
        "X": X_test,
        "y": y_test,
        "neg_text": neg_text,
        "neg_clus": neg_clus,
    }


def test_scores_are_cosines_to_the_prompts(space):
    det = ClipPrompt.from_vectors(
        np.stack([space["t"], space["other"]]),
        threshold=0.3,
        prompts=["a photo of X", "a photo of Y"],
    )
    X = space["X"]
    manual = np.max(X @ np.stack([space["t"], space["other"]]).T, axis=1)
    np.testing.assert_allclose(det.score_samples(X), manual, atol=1e-12)
    mean = ClipPrompt.from_vectors(space["t"][None], threshold=0.3, aggregate="mean")
    np.testing.assert_allclose(mean.score_samples(X), X @ space["t"], atol=1e-12)
    assert det.calibration_.startswith("zero-shot")
    with pytest.raises(ValueError, match="calibration scores"):
        det.p_value(X)  # zero-shot: nothing to compare against yet


def test_negative_prompts_softmax(space):
    det = ClipPrompt.from_vectors(space["t"][None], space["other"][None])
    assert det.threshold_ == 0.5
    X = space["X"]
    s = det.score_samples(X)
    z = 100 * np.c_[X @ space["t"], X @ space["other"]]
    np.testing.assert_allclose(s, np.exp(z[:, 0]) / np.exp(z).sum(1), rtol=1e-9)
    assert ((s >= 0) & (s <= 1)).all()
    # images near the prompt beat images near the negative prompt
    assert det.predict(space["neg_text"]).mean() > 0.9
    assert det.predict(space["neg_clus"]).mean() < 0.1
    diff = ClipPrompt.from_vectors(
        space["t"][None], space["other"][None], aggregate="max", threshold=0.0
    )
    np.testing.assert_allclose(diff.score_samples(X), X @ space["t"] - X @ space["other"])


def test_fit_calibrates_on_positives_and_calibrate_moves_threshold(space):
    det = ClipPrompt.from_vectors(space["t"][None], threshold=0.9, target_tpr=0.9)
    det.fit(space["train"])
    assert det.threshold_ < 0.9 and det.calibration_scores_.shape == (30,)
    assert det.predict(space["train"]).mean() >= 0.9  # in-sample = out-of-sample here
    p = det.p_value(space["X"])
    assert p[:30].mean() > p[60:].mean()  # negatives far from the prompt get small p-values
    det.calibrate(space["X"], space["y"], target_fpr=0.05)
    assert (det.predict(space["X"][space["y"] == 0])).mean() <= 0.05


def test_dimension_and_input_checks(space):
    det = ClipPrompt.from_vectors(space["t"][None], threshold=0.2)
    with pytest.raises(ValueError, match="features"):
        det.score_samples(np.ones((3, DIM + 1)))
    with pytest.raises(ValueError, match="natural threshold"):
        ClipPrompt.from_vectors(space["t"][None])
    with pytest.raises(ValueError, match="embedder"):
        ClipPrompt(prompts=["a photo of X"], embedder=None).fit(space["train"])
    with pytest.raises(ValueError, match="needs prompts"):
        ClipPrompt(prompts=[]).fit(space["train"])
    with pytest.raises(ValueError, match="aggregate"):
        ClipPrompt(prompts=["x"], aggregate="median").fit(space["train"])


def test_save_and_load(space, tmp_path):
    det = ClipPrompt.from_vectors(
        space["t"][None],
        space["other"][None],
        prompts=["a photo of X"],
        negative_prompts=["a photo of Y"],
    )
    det.fit(space["train"])
    back = load(det.save(tmp_path / "prompt"))
    assert isinstance(back, ClipPrompt) and back.prompts == ["a photo of X"]
    np.testing.assert_array_equal(back.score_samples(space["X"]), det.score_samples(space["X"]))
    assert back.threshold_ == det.threshold_


def test_fusion_of_prompt_and_few_shot(space, tmp_path):
    X, y, held_out = space["X"], space["y"], space["held_out"]
    prompt = ClipPrompt.from_vectors(space["t"][None], threshold=0.3)
    knn = make_detector("knn").fit(space["train"])
    fus = Fusion.from_fitted([prompt, knn], held_out)
    auc = {
        name: roc_auc_score(y, d.score_samples(X))
        for name, d in (("prompt", prompt), ("knn", knn), ("fusion", fus))
    }
    assert auc["fusion"] > min(auc["prompt"], auc["knn"]) + 0.05, auc
    # rank normalisation: the mean of each part's conformal rank among held-out scores
    manual = np.mean(
        [
            (
                1
                + np.searchsorted(
                    np.sort(d.score_samples(held_out)), d.score_samples(X), side="right"
                )
            )
            / 21
            for d in (prompt, knn)
        ],
        axis=0,
    )
    np.testing.assert_allclose(fus.score_samples(X), manual)
    assert fus.predict(held_out).mean() >= 0.95 - 1e-9  # threshold from the held-out positives
    only_knn = Fusion.from_fitted([prompt, knn], held_out, weights=[0, 1])
    assert roc_auc_score(y, only_knn.score_samples(X)) == pytest.approx(auc["knn"], abs=0.02)
    back = load(fus.save(tmp_path / "fusion"))
    np.testing.assert_array_equal(back.score_samples(X), fus.score_samples(X))
    assert isinstance(back.parts_[0], ClipPrompt) and back.threshold_ == fus.threshold_


def test_fusion_fit_from_specs(space, tmp_path):
    specs = [{"detector": "knn", "params": {"k": 3}}, "mahalanobis"]
    fus = Fusion(detectors=specs, normalize="z").fit(space["train"])
    assert len(fus.parts_) == 2 and fus.calibration_scores_.shape == (30,)
    back = load(fus.save(tmp_path / "f"))
    np.testing.assert_allclose(back.score_samples(space["X"]), fus.score_samples(space["X"]))
    with pytest.raises(ValueError, match="weights"):
        Fusion(detectors=specs, weights=[1, -1]).fit(space["train"])


def test_end_to_end_with_a_clip_model(data_root, tmp_path):
    """Real images and prompts through a (tiny, random) CLIP: the detector's scores are the
    cosines between the embedder's image and text vectors, and the fit path that computes the
    text vectors from an embedder spec gives the same detector as from_text."""
    folder = save_random_clip(tmp_path / "clip")
    emb = ClipEmbedder(model_path=str(folder))
    files = sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:6]
    X = emb.embed_array([Image.open(f) for f in files], progress=False)
    prompts, negs = ["a photo of Nicolas Cage"], ["a photo of a cat", "a photo of a car"]
    det = ClipPrompt.from_text(emb, prompts, negs, aggregate="max", threshold=0.0)
    T, N = emb.embed_text(prompts), emb.embed_text(negs)
    np.testing.assert_allclose(det.score_samples(X), (X @ T.T).max(1) - (X @ N.T).max(1), atol=1e-5)
    assert det.embedder_name_ == emb.name
    spec = f"clip:model_path={folder}"
    fitted = ClipPrompt(prompts=prompts, negative_prompts=negs, embedder=spec, aggregate="max").fit(
        X
    )
    np.testing.assert_allclose(fitted.score_samples(X), det.score_samples(X), atol=1e-6)
