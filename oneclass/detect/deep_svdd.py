"""Deep SVDD (Ruff et al., ICML 2018) for embedding vectors, as a oneclass detector.

A bias-free network maps the (normalised) vectors into a small space and is trained to pull the
positives towards a fixed centre ``c``; the score is ``-(squared distance to c)`` (soft-boundary:
``R^2 - distance^2``), so higher = more in-class. The torch parts live in
:mod:`oneclass.detect._svdd_net`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from oneclass.detect import _svdd_net as svdd
from oneclass.detect.base import BaseDetector, State

#: fewest held-out and training rows for early stopping; below them all rows train, no stopping
MIN_HELD_OUT, MIN_TRAIN_WITH_HELD_OUT = 5, 10
#: ``epochs="auto"``: about this many optimizer steps, whatever the training-set size
AUTO_STEPS, AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS = 100, 3, 500
SCALINGS = ("global", "feature", "none")


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run torch's CPU ops on at most ``n_threads`` threads (default: up to 4), then restore."""
    before = torch.get_num_threads()
    want = min(before, 4) if n_threads is None else int(n_threads)
    if want != before:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if want != before:
            torch.set_num_threads(before)


class DeepSVDD(BaseDetector):
    """Deep Support Vector Data Description on embedding vectors (bias-free MLP, PyTorch).

    Parameters
    ----------
    hidden_sizes : widths of the hidden layers (bias-free linear + ``activation``).
    rep_dim : size of the output representation, where the centre ``c`` lives.
    activation : ``"leaky_relu"``, ``"relu"`` or ``"tanh"``.
    objective : ``"one-class"`` (pull everything to ``c``) or ``"soft-boundary"`` (a sphere of
        radius ``R`` that leaves out about a fraction ``nu`` of the training data).
    nu : soft-boundary trade-off in (0, 1]; the radius is the ``(1 - nu)`` distance quantile.
    epochs : training epochs at most; ``"auto"``: enough for about 100 optimizer steps
        (few epochs on a large set, many on a small one).
    batch_size, lr, weight_decay : Adam training of the Deep SVDD objective.
    warmup_epochs : soft-boundary epochs trained with ``R = 0`` before the radius is set.
    pretrain_epochs : autoencoder pretraining epochs (0 = none); the encoder starts from it.
    validation_fraction, patience : early stopping on a held-out slice of the positives,
        watching the held-out objective; the best epoch's weights are kept. ``0`` = no slice.
    l2_normalize : scale each input vector to unit length first (suits CNN/CLIP embeddings).
    standardize : then centre the features and scale them: ``"global"`` (one scale for all,
        keeps the geometry), ``"feature"`` (each feature to unit variance) or ``"none"``.
    center_eps : centre coordinates closer to 0 than this are pushed to ``±center_eps``.
    init : initial weights: ``"orthogonal"`` (the untrained network nearly keeps distances) or
        ``"uniform"`` (PyTorch's default).
    device : ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    n_threads : CPU threads for torch during fit/score (default: up to 4).
    target_tpr, calibration_folds, random_state, contamination : as for every detector
        (:mod:`oneclass.detect.base`); a seed fixes the weights, data order and held-out slice.
    """

    name = "deep-svdd"
    min_train_samples = 2
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "hidden_sizes": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "rep_dim": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(svdd.ACTIVATIONS))],
        "objective": [StrOptions(set(svdd.OBJECTIVES))],
        "nu": [Interval(Real, 0, 1, closed="right")],
        "epochs": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "l2_normalize": ["boolean"],
        "standardize": [StrOptions(set(SCALINGS))],
        "center_eps": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions(set(svdd.INITS))],
        "device": [str],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (512,),
        rep_dim: int = 256,
        activation: str = "leaky_relu",
        objective: str = "one-class",
        nu: float = 0.1,
        epochs: int | str = "auto",
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        warmup_epochs: int = 5,
        pretrain_epochs: int = 0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        l2_normalize: bool = True,
        standardize: str = "global",
        center_eps: float = 0.1,
        init: str = "orthogonal",
        device: str = "auto",
        n_threads: int | None = None,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state=None,
        *,
        contamination: float | None = None,
    ):
        self.hidden_sizes = hidden_sizes
        self.rep_dim = rep_dim
        self.activation = activation
        self.objective = objective
        self.nu = nu
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.pretrain_epochs = pretrain_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.l2_normalize = l2_normalize
        self.standardize = standardize
        self.center_eps = center_eps
        self.init = init
        self.device = device
        self.n_threads = n_threads
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    # ---- validation -------------------------------------------------------------------------
    def _architecture(self) -> dict:
        """Checked architecture parameters (what ``_set_state`` needs to rebuild the network)."""
        raw: Any = self.hidden_sizes
        if isinstance(raw, int | np.integer):
            raw = (raw,)
        try:
            sizes = [int(h) for h in raw]
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"hidden_sizes must be a list of ints, got {self.hidden_sizes!r}"
            ) from exc
        if any(h < 1 for h in sizes):
            raise ValueError(f"hidden_sizes must be positive, got {sizes}")
        if not isinstance(self.rep_dim, int | np.integer) or self.rep_dim < 1:
            raise ValueError(f"rep_dim must be a positive int, got {self.rep_dim!r}")
        if self.activation not in svdd.ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose from {', '.join(svdd.ACTIVATIONS)}"
            )
        return {"hidden_sizes": sizes, "rep_dim": int(self.rep_dim), "activation": self.activation}

    # ---- preprocessing ----------------------------------------------------------------------
    def _prepare(self, X: np.ndarray) -> torch.Tensor:
        """Normalise ``X`` as learnt at fit; a float32 tensor on the fitted device."""
        if self.l2_normalize_:
            X = _unit_rows(X)
        X = (X - self.scaler_mean_) / self.scaler_scale_
        return torch.as_tensor(X, dtype=torch.float32).to(self.device_)

    def _fit_scaler(self, X: np.ndarray) -> None:
        if self.l2_normalize_:
            X = _unit_rows(X)
        if self.standardize == "global":
            self.scaler_mean_ = X.mean(axis=0)
            rms = float(np.sqrt(X.var(axis=0).mean()))
            self.scaler_scale_ = np.full(X.shape[1], rms if rms > 0 else 1.0)
        elif self.standardize == "feature":
            self.scaler_mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            # constant features: leave unscaled rather than divide by ~0
            self.scaler_scale_ = np.where(std > 1e-8 * max(float(std.max()), 1e-12), std, 1.0)
        else:
            self.scaler_mean_ = np.zeros(X.shape[1])
            self.scaler_scale_ = np.ones(X.shape[1])

    def _n_epochs(self, n_train: int) -> int:
        """``epochs``, or for ``"auto"`` the epochs that make about ``AUTO_STEPS`` steps."""
        if self.epochs != "auto":
            return int(self.epochs)
        batches = -(-n_train // self.batch_size)
        return int(np.clip(-(-AUTO_STEPS // batches), AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS))

    def _split(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and held-out row indices; no held-out slice when it would be too small."""
        n_val = int(round(self.validation_fraction * n))
        order = rng.permutation(n)
        if n_val < MIN_HELD_OUT or n - n_val < MIN_TRAIN_WITH_HELD_OUT:
            return np.sort(order), None
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    # ---- the detector hooks -----------------------------------------------------------------
    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        arch = self._architecture()
        self.architecture_ = arch
        self.l2_normalize_ = bool(self.l2_normalize)
        self.device_ = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        train_idx, val_idx = self._split(X.shape[0], rng)
        self.early_stopping_ = val_idx is not None
        self.validation_indices_ = val_idx
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        self._fit_scaler(X[train_idx])
        with torch_threads(self.n_threads):
            Xt = self._prepare(X[train_idx])
            Xv = None if val_idx is None else self._prepare(X[val_idx])
            net = svdd.SVDDNet(X.shape[1], **arch)
            svdd.init_weights(net, generator, self.init)
            net.to(self.device_)
            self.pretrain_loss_ = []
            if self.pretrain_epochs:
                ae = svdd.SVDDAutoencoder(net, X.shape[1], **arch)
                svdd.init_weights(ae.decoder, generator, self.init)
                ae.to(self.device_)
                self.pretrain_loss_ = svdd.pretrain_autoencoder(
                    ae,
                    Xt,
                    epochs=self.pretrain_epochs,
                    lr=self.lr,
                    weight_decay=self.weight_decay,
                    batch_size=self.batch_size,
                    generator=generator,
                )
            center = svdd.init_center(net, Xt, self.center_eps)
            result = svdd.train_svdd(
                net,
                Xt,
                center,
                objective=self.objective,
                nu=self.nu,
                epochs=self._n_epochs(train_idx.size),
                lr=self.lr,
                weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                generator=generator,
                X_val=Xv,
                patience=self.patience,
                warmup_epochs=self.warmup_epochs,
            )
            net.eval()
            self.radius_ = 0.0
            if self.objective == "soft-boundary":
                # the line-search solution for R given the final weights (Ruff et al., sec. 3.1)
                sq = svdd.squared_distances(svdd.embed(net, Xt), center)
                self.radius_ = svdd.radius_from_distances(sq, self.nu)
        self.net_ = net
        self.center_ = center.detach().cpu().numpy().astype(np.float64)
        self.train_loss_ = result.train_loss
        self.validation_loss_ = result.validation_loss
        self.n_epochs_ = result.n_epochs
        self.best_epoch_ = result.best_epoch
        self.stopped_early_ = result.stopped_early

    def _score(self, X: np.ndarray) -> np.ndarray:
        with torch_threads(self.n_threads):
            z = svdd.embed(self.net_, self._prepare(X))
            center = torch.as_tensor(self.center_, dtype=torch.float32, device=self.device_)
            sq = svdd.squared_distances(z, center).double().cpu().numpy()
        return self.radius_**2 - sq

    def _get_state(self) -> State:
        meta = {
            **self.architecture_,
            "radius_": self.radius_,
            "l2_normalize_": self.l2_normalize_,
            "objective": self.objective,
            "n_epochs_": self.n_epochs_,
            "best_epoch_": self.best_epoch_,
            "early_stopping_": self.early_stopping_,
        }
        arrays = {
            "center_": self.center_,
            "scaler_mean_": self.scaler_mean_,
            "scaler_scale_": self.scaler_scale_,
        }
        tensors = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        return State(meta=meta, arrays=arrays, tensors=tensors)

    def _set_state(self, state: State) -> None:
        meta = state.meta
        self.architecture_ = {
            "hidden_sizes": [int(h) for h in meta["hidden_sizes"]],
            "rep_dim": int(meta["rep_dim"]),
            "activation": str(meta["activation"]),
        }
        self.radius_ = float(meta["radius_"])
        self.l2_normalize_ = bool(meta["l2_normalize_"])
        self.n_epochs_ = int(meta["n_epochs_"])
        self.best_epoch_ = int(meta["best_epoch_"])
        self.early_stopping_ = bool(meta["early_stopping_"])
        self.center_ = np.asarray(state.arrays["center_"], dtype=np.float64)
        self.scaler_mean_ = np.asarray(state.arrays["scaler_mean_"], dtype=np.float64)
        self.scaler_scale_ = np.asarray(state.arrays["scaler_scale_"], dtype=np.float64)
        # a model fitted on a GPU scores on a CPU-only machine too
        self.device_ = resolve_device("auto" if self.device != "cpu" else "cpu")
        net = svdd.SVDDNet(self.n_features_in_, **self.architecture_)
        try:
            net.load_state_dict({k: torch.as_tensor(v) for k, v in state.tensors.items()})
        except RuntimeError as exc:
            raise ValueError(
                f"deep-svdd weights do not match the saved architecture {self.architecture_}: {exc}"
            ) from exc
        self.net_ = net.to(self.device_).eval()
