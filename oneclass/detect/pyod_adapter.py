"""Any PyOD detector under the oneclass contract: ``make_detector("pyod:LOF", n_neighbors=10)``.

The PyOD class is found by name in ``pyod.models.*`` (by reading the module sources, so only the
chosen module is imported); its outlier score is negated (higher = more in-class).

Saving: a PyOD model cannot be saved without pickle, so the saved state is the training array
(plus the parameters and the seed); loading refits the model on it. For models that take a
``random_state`` the seed is fixed at fit time (``random_state``, or a drawn one when that is
None) and saved, so the reloaded model scores exactly like the saved one; models without
randomness (KNN, LOF, PCA, ...) refit to the same model anyway. A saved file chooses that refit,
so loading bounds it: at most :data:`MAX_REFIT_ROWS` training rows and
:data:`MAX_REFIT_VALUES` numbers, and every number in the parameters at most
:data:`MAX_REFIT_PARAM` (``n_estimators=10**9`` is refused, not run).

Calibration: a PyOD model's score scale may depend on how many rows it was fitted on (PCA sums
distances weighted by ``1 / explained variance ratio`` over as many components as there are
rows, and numerically-null components weigh ~1e30), so the cross-fitted scores of the fold
models are not on the final model's scale and a threshold from them does not transfer (pyod:PCA
kept 0% or let 80% of negatives through). Each fold's held-out scores are therefore mapped onto
the final model's scale by matching the median and interquartile range of each model's own
training scores (PyOD's ``decision_scores_``): a monotone map per fold, the identity when the
scales agree; see :func:`align_scale`.

Thresholds: PyOD's own ``contamination`` (its threshold rule) is never used: pass
``contamination`` to this detector (our rule, the same meaning: that fraction of the training
rows is flagged); inside ``params`` it is refused rather than silently ignored.

Batch independence: a few PyOD models (:data:`TRANSDUCTIVE`: ECOD, COPOD, RGraph) score a batch
together with the training set, so a sample's score would depend on the other samples scored
with it. The adapter scores those one sample at a time (slower, but a score is a property of
the sample alone).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone

from oneclass import calibrate as cal
from oneclass.detect.base import BaseDetector, State

#: PyOD models whose ``decision_function`` mixes the scored batch into the training data
TRANSDUCTIVE = frozenset({"ECOD", "COPOD", "RGraph"})

#: loading refits a saved PyOD model: bounds on what a file can make it do
MAX_REFIT_ROWS = 200_000
MAX_REFIT_VALUES = 50_000_000
MAX_REFIT_PARAM = 10_000

_CLASS_LINE = re.compile(r"^class (\w+)\((?:BaseDetector|BaseDeepLearningDetector)\b", re.M)


@lru_cache(maxsize=1)
def pyod_models() -> dict[str, str]:
    """PyOD detector class name -> module (``{"LOF": "pyod.models.lof", ...}``)."""
    import pyod.models

    found: dict[str, str] = {}
    for path in sorted(Path(pyod.models.__file__).parent.glob("*.py")):
        for name in _CLASS_LINE.findall(path.read_text(encoding="utf-8", errors="replace")):
            if name.startswith("Base"):
                continue
            found.setdefault(name, f"pyod.models.{path.stem}")
    return found


def pyod_class(name: str) -> type:
    """The PyOD detector class called ``name`` (case-insensitive when unambiguous)."""
    from pyod.models.base import BaseDetector as PyODBase

    if not isinstance(name, str) or not name:
        raise ValueError(f"model must be the name of a PyOD detector class, got {name!r}")
    models = pyod_models()
    if name not in models:
        folded = [m for m in models if m.lower() == name.lower()]
        if len(folded) != 1:
            close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            common = ", ".join(
                m
                for m in (
                    "KNN",
                    "LOF",
                    "IForest",
                    "OCSVM",
                    "ECOD",
                    "COPOD",
                    "HBOS",
                    "PCA",
                    "MCD",
                    "CBLOF",
                )
                if m in models
            )
            raise ValueError(
                f"unknown PyOD model {name!r}.{hint} Known models include {common} "
                f"({len(models)} in all, e.g. {', '.join(sorted(models)[:8])} ...)"
            )
        name = folded[0]
    try:
        module = importlib.import_module(models[name])
    except ImportError as exc:
        raise ImportError(
            f"PyOD model {name} needs a package that is not installed: {exc}"
        ) from exc
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, PyODBase)):
        raise ValueError(f"{models[name]}.{name} is not a PyOD detector")
    return cls


def _takes_random_state(cls: type) -> bool:
    """True when ``cls.__init__`` names ``random_state`` explicitly (not through ``**kwargs``)."""
    param = inspect.signature(cls).parameters.get("random_state")
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


class PyODDetector(BaseDetector):
    """A PyOD detector by class name; score = ``-decision_function`` (higher = more in-class).

    Parameters
    ----------
    model : a PyOD class name, e.g. ``"LOF"``, ``"ECOD"``, ``"IForest"`` (default).
    params : keyword arguments for the PyOD class. Extra keyword arguments of this constructor
        are merged into ``params`` (so ``PyODDetector("LOF", n_neighbors=10)`` works and
        ``get_params``/``clone`` see them as ``params``).
    random_state : seed for the calibration folds and, for PyOD classes that take one, for the
        model (unless ``params`` sets ``random_state`` itself).
    target_tpr, calibration_folds, contamination : as for every detector
        (:mod:`oneclass.detect.base`); PyOD's ``contamination`` means the same as ours.
    """

    name = "pyod"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "model": [str],
        "params": [None, dict],
    }

    def __init__(
        self,
        model: str = "IForest",
        params: dict[str, Any] | None = None,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
        **kwargs: Any,
    ):
        self.model = model
        # extra keywords are PyOD arguments: they join ``params`` (which get_params reports)
        self.params = (
            {**params, **kwargs}
            if kwargs and isinstance(params, dict)
            else (dict(kwargs) if kwargs and params is None else params)
        )
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _build(self, seed: int | None):
        cls = pyod_class(self.model)
        if self.params is not None and not isinstance(self.params, dict):
            raise ValueError(
                f"params must be a dict of {cls.__name__} arguments, got {self.params!r}"
            )
        kwargs = dict(self.params or {})
        if "contamination" in kwargs:
            raise ValueError(
                "PyOD's contamination is not used by oneclass (its threshold rule would be "
                "ignored): pass contamination=... to the detector itself, e.g. "
                f"make_detector('pyod:{cls.__name__}', contamination={kwargs['contamination']!r})"
            )
        if seed is not None and "random_state" not in kwargs:
            kwargs["random_state"] = seed
        try:
            return cls(**kwargs)
        except TypeError as exc:
            accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
            raise ValueError(
                f"bad parameters for PyOD {cls.__name__}: {exc}; it accepts {', '.join(accepted)}"
            ) from exc

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        seed = None
        if _takes_random_state(pyod_class(self.model)):
            seed = self.random_state
            if seed is None:
                seed = int(np.random.default_rng().integers(2**31 - 1))
        self.model_ = self._build(seed).fit(X)
        self.seed_ = seed
        self.X_train_ = X

    def _own_training_scores(self) -> np.ndarray:
        """The PyOD model's training scores in our direction (``-decision_scores_``)."""
        return -np.asarray(self.model_.decision_scores_, dtype=np.float64).ravel()

    def _training_scores(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, str, int | None]:
        folds = int(self.calibration_folds)
        if folds == 0:
            return super()._training_scores(X, y)
        final = self._own_training_scores()

        def fit_score(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
            fold = clone(self)
            fold.n_features_in_ = self.n_features_in_
            fold._check_train_size(train_idx.size)
            fold._fit_model(X[train_idx], None)
            return align_scale(fold._score(X[test_idx]), fold._own_training_scores(), final)

        scores = cal.crossfit_scores(
            fit_score,
            X.shape[0],
            folds,
            self.random_state,
            None,
            max_scored=self.max_calibration_scores,
        )
        return np.asarray(scores, dtype=np.float64), "cross-fitted", folds

    def _score(self, X: np.ndarray) -> np.ndarray:
        if type(self.model_).__name__ in TRANSDUCTIVE:
            raw = np.concatenate(
                [self.model_.decision_function(X[i : i + 1]) for i in range(X.shape[0])]
            )
        else:
            raw = self.model_.decision_function(X)
        return -np.asarray(raw, dtype=np.float64).ravel()

    def _get_state(self) -> State:
        return State(
            meta={"seed_": self.seed_, "pyod_class": type(self.model_).__name__},
            arrays={"X_train": self.X_train_},
        )

    def _set_state(self, state: State) -> None:
        seed = state.meta["seed_"]
        self.seed_ = None if seed is None else int(seed)
        X = np.asarray(state.arrays["X_train"], dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or X.shape[0] < 1:
            raise ValueError(
                f"model.X_train has shape {X.shape}, expected (n, {self.n_features_in_})"
            )
        if X.shape[0] > MAX_REFIT_ROWS or X.size > MAX_REFIT_VALUES:
            raise ValueError(
                f"model.X_train of shape {X.shape} is larger than a saved PyOD "
                f"model may refit ({MAX_REFIT_ROWS} rows, {MAX_REFIT_VALUES} numbers)"
            )
        check_refit_params(self.params or {})
        self.X_train_ = X
        self.model_ = self._build(self.seed_).fit(self.X_train_)


def align_scale(scores: np.ndarray, own: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map ``scores`` of one model onto another model's scale (robust affine map).

    Args:
        scores: scores given by the first model.
        own: the first model's training scores.
        target: the second model's training scores.

    Returns:
        ``median(target) + (scores - median(own)) * IQR(target) / IQR(own)``; a shift only when
        an interquartile range is 0.
    """
    q_own, q_target = np.percentile(own, [25, 50, 75]), np.percentile(target, [25, 50, 75])
    iqr_own, iqr_target = q_own[2] - q_own[0], q_target[2] - q_target[0]
    ratio = iqr_target / iqr_own if iqr_own > 0 and iqr_target > 0 else 1.0
    return q_target[1] + (np.asarray(scores, dtype=np.float64) - q_own[1]) * ratio


def check_refit_params(params: dict[str, Any], where: str = "params") -> None:
    """Refuse parameters from a file that would make a refit unbounded.

    Raises:
        ValueError: naming the parameter with a number above :data:`MAX_REFIT_PARAM`, a
            non-finite number, or a value that is not JSON (bool, number, string, None, list).
    """
    for key, value in params.items():
        name = f"{where}.{key}"
        items = value if isinstance(value, list | tuple) else [value]
        for v in items:
            if v is None or isinstance(v, bool | str):
                continue
            if not isinstance(v, int | float):
                raise ValueError(
                    f"{name} = {v!r}: a saved PyOD parameter must be a number, "
                    f"string, bool, None or a list of those"
                )
            if not np.isfinite(v) or abs(v) > MAX_REFIT_PARAM:
                raise ValueError(
                    f"{name} = {v!r} is outside what a saved PyOD model may "
                    f"refit with (|value| <= {MAX_REFIT_PARAM})"
                )


#: our detector -> the PyOD model it is benchmarked against
COUNTERPARTS = {
    "knn": "KNN",
    "ocsvm": "OCSVM",
    "iforest": "IForest",
    "mahalanobis": "MCD",
    "deep-svdd": "DeepSVDD",
}


def pyod_counterpart(name: str, n_features: int, seed: int):
    """PyOD's model ``name`` (a value of :data:`COUNTERPARTS`) at its defaults, seeded."""
    from pyod.models.deep_svdd import DeepSVDD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.mcd import MCD
    from pyod.models.ocsvm import OCSVM

    return {
        "KNN": lambda: KNN(),
        "OCSVM": lambda: OCSVM(),
        "IForest": lambda: IForest(random_state=seed),
        "MCD": lambda: MCD(random_state=seed),
        "DeepSVDD": lambda: DeepSVDD(n_features=n_features, random_state=seed, verbose=0),
    }[name]()
