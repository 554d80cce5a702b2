"""The pure torch part of Deep SVDD (Ruff et al., ICML 2018): bias-free networks and training.

Nothing here knows about numpy, calibration or saving; :mod:`oneclass.detect.deep_svdd` wraps it.
Every layer is bias-free and there is no affine normalisation: a bias (or an affine shift) lets
the network map every input onto the centre ``c``, the trivial "hypersphere collapse".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
}
OBJECTIVES = ("one-class", "soft-boundary")


def bias_free_mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Bias-free linear layers through ``sizes``, ``activation`` between them (none at the end)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out, bias=False))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class SVDDNet(nn.Module):
    """The Deep SVDD encoder phi(x; W): a bias-free MLP into a ``rep_dim``-d representation."""

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        rep_dim: int,
        activation: str = "leaky_relu",
    ):
        super().__init__()
        self.encoder = bias_free_mlp([n_features, *hidden_sizes, rep_dim], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class SVDDAutoencoder(nn.Module):
    """``net``'s encoder (shared, not copied) plus a mirrored bias-free decoder, for pretraining."""

    def __init__(
        self,
        net: SVDDNet,
        n_features: int,
        hidden_sizes: Sequence[int],
        rep_dim: int,
        activation: str = "leaky_relu",
    ):
        super().__init__()
        self.net = net
        self.decoder = bias_free_mlp([rep_dim, *reversed(hidden_sizes), n_features], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.net(x))


INITS = ("orthogonal", "uniform")


def init_weights(module: nn.Module, generator: torch.Generator, scheme: str = "orthogonal") -> None:
    """Re-draw every linear weight from ``generator`` (reproducible).

    ``"orthogonal"``: (semi-)orthogonal matrices, so the untrained network nearly preserves
    distances; ``"uniform"``: PyTorch's default (Kaiming-uniform) scheme.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if scheme == "orthogonal":
                nn.init.orthogonal_(layer.weight, generator=generator)
            else:
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)


@torch.no_grad()
def embed(net: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``net(X)`` in evaluation mode, in batches, without gradients."""
    net.eval()
    return torch.cat([net(X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)])


def squared_distances(z: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance of each row of ``z`` to ``center``."""
    return ((z - center) ** 2).sum(dim=1)


@torch.no_grad()
def init_center(net: nn.Module, X: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Mean representation of ``X``; coordinates with ``|c_i| < eps`` are pushed to ``±eps``.

    A coordinate at zero can be matched by zero weights, which is a step towards collapse.
    """
    c = embed(net, X).mean(dim=0)
    small = c.abs() < eps
    c[small & (c < 0)] = -eps
    c[small & (c >= 0)] = eps
    return c


def radius_from_distances(sq_dist: torch.Tensor, nu: float) -> float:
    """Soft-boundary radius: the ``(1 - nu)`` quantile of the distances (not squared)."""
    return float(torch.quantile(sq_dist.detach().double().sqrt(), 1.0 - nu))


def svdd_loss(sq_dist: torch.Tensor, objective: str, radius: float, nu: float) -> torch.Tensor:
    """One-class: mean squared distance. Soft-boundary: ``R^2 + mean(max(0, d^2 - R^2)) / nu``."""
    if objective == "soft-boundary":
        r2 = radius**2
        return r2 + torch.clamp(sq_dist - r2, min=0).mean() / nu
    return sq_dist.mean()


@dataclass
class TrainResult:
    """What a training run did: losses per epoch, the epoch kept, whether it stopped early."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    radius: float = 0.0

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)


def adam(params, *, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where torch supports it (CPU/CUDA, torch >= 2.4): faster."""
    params = list(params)
    fused = torch.__version__ >= "2.4" and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    return list(torch.randperm(n, generator=generator).split(batch_size))


def pretrain_autoencoder(
    ae: SVDDAutoencoder,
    X: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
) -> list[float]:
    """Train ``ae`` to reconstruct ``X`` (mean squared error); returns the loss per epoch."""
    opt = adam(ae.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(epochs):
        ae.train()
        total = torch.zeros((), device=X.device)
        for idx in _batches(X.shape[0], batch_size, generator):
            xb = X[idx.to(X.device)]
            loss = ((ae(xb) - xb) ** 2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        losses.append(float(total) / X.shape[0])
    return losses


def train_svdd(
    net: SVDDNet,
    X: torch.Tensor,
    center: torch.Tensor,
    *,
    objective: str,
    nu: float,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
    X_val: torch.Tensor | None = None,
    patience: int = 10,
    warmup_epochs: int = 10,
    tol: float = 1e-4,
) -> TrainResult:
    """Minimise the Deep SVDD objective; with ``X_val``, stop early and keep the best weights.

    Early stopping watches the held-out objective (not the training loss): training ends when it
    has not improved by a relative ``tol`` for ``patience`` epochs, and the weights of the epoch
    with the lowest held-out objective are restored. Soft-boundary: the radius is 0 for
    ``warmup_epochs``, then re-set after each epoch from that epoch's distances; the held-out
    objective is only watched once the radius exists.
    """
    opt = adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    result = TrainResult()
    radius = 0.0
    watch_from = warmup_epochs if objective == "soft-boundary" else 0
    params = list(net.parameters())
    best = [p.detach().clone() for p in params]  # the kept weights, copied in place
    best_loss, best_radius, since_best, ref_loss = math.inf, 0.0, 0, math.inf
    for epoch in range(epochs):
        net.train()
        total, seen = torch.zeros((), device=X.device), []
        for idx in _batches(X.shape[0], batch_size, generator):
            d = squared_distances(net(X[idx.to(X.device)]), center)
            loss = svdd_loss(d, objective, radius, nu)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
            seen.append(d.detach())
        result.train_loss.append(float(total) / X.shape[0])
        if objective == "soft-boundary" and epoch + 1 >= warmup_epochs:
            radius = radius_from_distances(torch.cat(seen), nu)
        if X_val is None:
            continue
        val = float(svdd_loss(squared_distances(embed(net, X_val), center), objective, radius, nu))
        result.validation_loss.append(val)
        if epoch < watch_from:
            continue
        if val < best_loss:
            best_loss, best_radius, result.best_epoch = val, radius, epoch + 1
            with torch.no_grad():
                for kept, p in zip(best, params, strict=True):
                    kept.copy_(p)
        if not math.isfinite(ref_loss) or val < ref_loss - tol * abs(ref_loss):
            ref_loss, since_best = val, 0
        else:
            since_best += 1
            if since_best >= patience:
                result.stopped_early = True
                break
    if result.best_epoch:
        with torch.no_grad():
            for kept, p in zip(best, params, strict=True):
                p.copy_(kept)
        radius = best_radius
    else:
        result.best_epoch = result.n_epochs
    result.radius = radius
    return result
