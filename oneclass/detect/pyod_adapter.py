"""Any PyOD detector under the oneclass contract: ``make_detector("pyod:LOF", n_neighbors=10)``.

The PyOD class is found by name in ``pyod.models.*`` (by reading the module sources, so only the
chosen module is imported); its outlier score is negated (higher = more in-class).

Saving: a PyOD model cannot be saved without pickle, so the saved state is the training array
(plus the parameters and the seed); loading refits the model on it. For models that take a
``random_state`` the seed is fixed at fit time (``random_state``, or a drawn one when that is
None) and saved, so the reloaded model scores exactly like the saved one; models without
randomness (KNN, LOF, PCA, ...) refit to the same model anyway.

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
from typing import Any

import numpy as np

from oneclass.detect.base import BaseDetector, State

#: PyOD models whose ``decision_function`` mixes the scored batch into the training data
TRANSDUCTIVE = frozenset({"ECOD", "COPOD", "RGraph"})

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
            common = ", ".join(m for m in ("KNN", "LOF", "IForest", "OCSVM", "ECOD", "COPOD",
                                           "HBOS", "PCA", "MCD", "CBLOF") if m in models)
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
    param = inspect.signature(cls.__init__).parameters.get("random_state")
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
    """

    name = "pyod"

    def __init__(self, model: str = "IForest", params: dict[str, Any] | None = None,
                 target_tpr: float = 0.95, calibration_folds: int = 5,
                 random_state: int | None = None, **kwargs: Any):
        self.model = model
        self.params = {**(params or {}), **kwargs} if kwargs else params
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _build(self, seed: int | None):
        cls = pyod_class(self.model)
        if self.params is not None and not isinstance(self.params, dict):
            raise ValueError(f"params must be a dict of {cls.__name__} arguments, "
                             f"got {self.params!r}")
        kwargs = dict(self.params or {})
        if seed is not None and "random_state" not in kwargs:
            kwargs["random_state"] = seed
        try:
            return cls(**kwargs)
        except TypeError as exc:
            accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
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

    def _score(self, X: np.ndarray) -> np.ndarray:
        if type(self.model_).__name__ in TRANSDUCTIVE:
            raw = np.concatenate([self.model_.decision_function(X[i:i + 1])
                                  for i in range(X.shape[0])])
        else:
            raw = self.model_.decision_function(X)
        return -np.asarray(raw, dtype=np.float64).ravel()

    def _get_state(self) -> State:
        return State(meta={"seed_": self.seed_, "pyod_class": type(self.model_).__name__},
                     arrays={"X_train": self.X_train_})

    def _set_state(self, state: State) -> None:
        seed = state.meta["seed_"]
        self.seed_ = None if seed is None else int(seed)
        self.X_train_ = np.asarray(state.arrays["X_train"], dtype=np.float64)
        self.model_ = self._build(self.seed_).fit(self.X_train_)


#: our detector -> the PyOD model it is benchmarked against
COUNTERPARTS = {"knn": "KNN", "ocsvm": "OCSVM", "iforest": "IForest", "mahalanobis": "MCD",
                "deep-svdd": "DeepSVDD"}


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
