"""Supervised baselines (positives vs. negatives): logistic regression, RBF SVM, small MLP.

They answer "how much do negatives help?" next to the one-class detectors, under the same
contract: ``fit(X, y)`` with y=1 in-class and y=0 negative, score = the classifier's margin
(logit / SVM decision value), higher = more in-class. Inputs are standardised with the training
mean and spread (``standardize=True``). Fitting is scikit-learn's; scoring is numpy on the saved
arrays (scaler, weights, support vectors), so a loaded model scores exactly like the fitted one.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval, StrOptions

from oneclass.detect.base import BinaryBaseline, State
from oneclass.detect.ocsvm import GAMMAS, fit_rbf_svm, rbf_decision, resolve_gamma

CLASS_WEIGHTS = (None, "balanced")
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
    "identity": lambda z: z,
}


#: constraints shared by the three baselines
_COMMON: dict[str, list[Any]] = {
    **BinaryBaseline._parameter_constraints,
    "C": [Interval(Real, 0, None, closed="neither")],
    "class_weight": [StrOptions({"balanced"}), None],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "standardize": ["boolean"],
}


class _StandardizedBaseline(BinaryBaseline):
    """Shared part: optional standardisation, kept as arrays ``mean_`` and ``scale_``."""

    def _fit_scaler(self, X: np.ndarray) -> np.ndarray:
        if self.standardize:
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        else:
            self.mean_ = np.zeros(X.shape[1])
            self.scale_ = np.ones(X.shape[1])
        return self._transform(X)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _state(self, meta: dict, arrays: dict) -> State:
        return State(meta=meta, arrays={"mean": self.mean_, "scale": self.scale_, **arrays})

    def _set_scaler(self, state: State) -> None:
        self.mean_ = np.asarray(state.arrays["mean"], dtype=np.float64)
        self.scale_ = np.asarray(state.arrays["scale"], dtype=np.float64)


class LogisticBaseline(_StandardizedBaseline):
    """L2-regularised logistic regression; score = the logit ``w.x + b``."""

    name = "logistic"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = dict(_COMMON)

    def __init__(
        self,
        C: float = 1.0,
        class_weight: str | None = "balanced",
        max_iter: int = 1000,
        standardize: bool = True,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.standardize = standardize
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        clf = LogisticRegression(
            C=self.C,
            class_weight=self.class_weight,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        clf.fit(self._fit_scaler(X), y)
        self.coef_ = np.ascontiguousarray(clf.coef_.ravel(), dtype=np.float64)
        self.intercept_ = float(clf.intercept_[0])

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._transform(X) @ self.coef_ + self.intercept_

    def _get_state(self) -> State:
        return self._state({"intercept_": self.intercept_}, {"coef": self.coef_})

    def _set_state(self, state: State) -> None:
        self._set_scaler(state)
        self.coef_ = np.asarray(state.arrays["coef"], dtype=np.float64)
        self.intercept_ = float(state.meta["intercept_"])


class SVMBaseline(_StandardizedBaseline):
    """RBF-kernel SVM (``SVC``); score = its decision value.

    ``gamma``: as for :class:`oneclass.detect.ocsvm.OCSVM` (``"scale"``, ``"auto"``,
    ``"median"`` or a positive number), computed on the standardised inputs.
    """

    name = "svm"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_COMMON,
        "gamma": [StrOptions(set(GAMMAS)), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        C: float = 1.0,
        gamma: str | float = "scale",
        class_weight: str | None = "balanced",
        standardize: bool = True,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.C = C
        self.gamma = gamma
        self.class_weight = class_weight
        self.standardize = standardize
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        Z = self._fit_scaler(X)
        gamma = resolve_gamma(self.gamma, Z)
        svm = fit_rbf_svm(
            SVC,
            Z,
            y,
            gamma,
            C=self.C,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )
        self.gamma_ = gamma
        self.support_vectors_ = np.ascontiguousarray(Z[svm.support_])
        self.dual_coef_ = np.ascontiguousarray(svm.dual_coef_.ravel(), dtype=np.float64)
        self.intercept_ = float(svm.intercept_[0])

    def _score(self, X: np.ndarray) -> np.ndarray:
        return rbf_decision(
            self._transform(X), self.support_vectors_, self.dual_coef_, self.intercept_, self.gamma_
        )

    def _get_state(self) -> State:
        return self._state(
            {"gamma_": self.gamma_, "intercept_": self.intercept_},
            {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_},
        )

    def _set_state(self, state: State) -> None:
        self._set_scaler(state)
        self.gamma_ = float(state.meta["gamma_"])
        self.intercept_ = float(state.meta["intercept_"])
        self.support_vectors_ = np.asarray(state.arrays["support_vectors"], dtype=np.float64)
        self.dual_coef_ = np.asarray(state.arrays["dual_coef"], dtype=np.float64)


class MLPBaseline(_StandardizedBaseline):
    """Small multi-layer perceptron (``MLPClassifier``, Adam); score = the output logit."""

    name = "mlp"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_COMMON,
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "hidden_layer_sizes": [Interval(Integral, 1, None, closed="left"), "array-like"],
    }

    def __init__(
        self,
        hidden_layer_sizes: int | tuple[int, ...] = (64,),
        activation: str = "relu",
        alpha: float = 1e-4,
        max_iter: int = 300,
        standardize: bool = True,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.max_iter = max_iter
        self.standardize = standardize
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        raw: Any = self.hidden_layer_sizes
        sizes: list[Any] = [raw] if isinstance(raw, numbers.Integral) else list(raw)
        if not all(isinstance(s, numbers.Integral) and int(s) > 0 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        clf = MLPClassifier(
            hidden_layer_sizes=tuple(sizes),
            activation=self.activation,
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        clf.fit(self._fit_scaler(X), y)
        self.weights_ = [np.ascontiguousarray(w, dtype=np.float64) for w in clf.coefs_]
        self.biases_ = [np.ascontiguousarray(b, dtype=np.float64) for b in clf.intercepts_]

    def _score(self, X: np.ndarray) -> np.ndarray:
        act = ACTIVATIONS[self.activation]
        h = self._transform(X)
        for w, b in zip(self.weights_[:-1], self.biases_[:-1], strict=True):
            h = act(h @ w + b)
        return (h @ self.weights_[-1] + self.biases_[-1]).ravel()

    def _get_state(self) -> State:
        arrays = {f"W{i}": w for i, w in enumerate(self.weights_)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases_)})
        return self._state({"n_layers": len(self.weights_)}, arrays)

    def _set_state(self, state: State) -> None:
        self._set_scaler(state)
        n = int(state.meta["n_layers"])
        self.weights_ = [np.asarray(state.arrays[f"W{i}"], dtype=np.float64) for i in range(n)]
        self.biases_ = [np.asarray(state.arrays[f"b{i}"], dtype=np.float64) for i in range(n)]
