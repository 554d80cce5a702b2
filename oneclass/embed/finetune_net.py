"""Pure torch parts of the fine-tuned EfficientNet-Lite: a frozen trunk, a trainable top, losses.

The ImageNet EfficientNet-Lite is cut at block ``train_from``: the trunk (stem and the early
blocks) stays frozen, so its feature maps can be computed once per image and view and cached; the
top (the last blocks and the 1x1 head convolution) is trained. Batch-norm statistics of the top
stay frozen (eval mode) even while training: a few dozen images cannot re-estimate them.

Losses:

* :func:`binary_loss`: class-balanced binary cross-entropy of a linear head (the seeds' system).
* :func:`msc_loss`: Mean-Shifted Contrastive loss (Reiss & Hoshen, "Mean-Shifted Contrastive Loss
  for Anomaly Detection", AAAI 2023): NT-Xent between two augmented views of the features
  mean-shifted by the centre of the pretrained features, plus the angular centre loss. It adapts
  the features to one class without the collapse of a positives-only classifier.
* :func:`outlier_exposure_loss`: pushes auxiliary ("not of the class") images away from the centre.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: the first trained block per variant: the last three blocks and the head convolution are
#: trained (Lite0: blocks 13-15, 192 -> 320 channels at 7 x 7, about a quarter of the compute;
#: Lite2: blocks 18-20 at 9 x 9)
DEFAULT_TRAIN_FROM = {"lite0": 13, "lite2": 18}


class EffNetTrunk(nn.Module):
    """Stem and blocks ``[0, train_from)`` of an EfficientNet-Lite (frozen): images -> maps."""

    def __init__(self, net: Any, train_from: int):
        super().__init__()
        self.conv_stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(list(net._blocks)[:train_from])
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> EffNetTrunk:
        return super().train(False)  # always frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn0(self.conv_stem(x)))
        for block in self.blocks:
            x = block(x, drop_connect_rate=None)
        return x


class EffNetTop(nn.Module):
    """Blocks ``[train_from, end)`` and the head convolution: feature maps -> pooled features.

    Drop-connect (the network's own stochastic depth) is active while training.
    """

    def __init__(self, net: Any, train_from: int):
        super().__init__()
        blocks = list(net._blocks)
        self.blocks = nn.ModuleList(blocks[train_from:])
        rate = float(net._global_params.drop_connect_rate or 0.0)
        self.rates = [rate * (train_from + i) / len(blocks) for i in range(len(self.blocks))]
        self.conv_head, self.bn1, self.act = net._conv_head, net._bn1, net._swish

    def train(self, mode: bool = True) -> EffNetTop:
        super().train(mode)
        for m in self.modules():  # frozen batch-norm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.rates, strict=True):
            x = block(x, drop_connect_rate=rate if self.training else None)
        x = self.act(self.bn1(self.conv_head(x)))
        return x.mean(dim=(2, 3))


def split_effnet(net: Any, train_from: int) -> tuple[EffNetTrunk, EffNetTop]:
    """Cut an ``efficientnet_lite_pytorch`` network at block ``train_from``.

    Returns:
        ``(trunk, top)`` sharing the network's modules.
    """
    n = len(net._blocks)
    if not 0 < int(train_from) < n:
        raise ValueError(f"train_from must be in [1, {n - 1}], got {train_from}")
    return EffNetTrunk(net, int(train_from)), EffNetTop(net, int(train_from))


def signed_sqrt(f: torch.Tensor) -> torch.Tensor:
    """``sign(f) * sqrt(|f| + 1e-6)``: power normalisation with a finite gradient at 0.

    Returns:
        A tensor shaped like ``f``.
    """
    return torch.sign(f) * torch.sqrt(f.abs() + 1e-6)


def binary_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Binary cross-entropy with positives weighted by ``pos_weight`` (n_neg / n_pos).

    Returns:
        The mean loss (a scalar tensor).
    """
    w = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=w)


def nt_xent(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float,
    extra_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """SimCLR's NT-Xent: ``a[i]`` and ``b[i]`` are two views of one image, every other row of
    both (and ``extra_negatives``) a negative. Inputs are unit vectors.

    Returns:
        The mean loss over the ``2n`` anchors.
    """
    z = torch.cat([a, b])
    n = a.shape[0]
    others = z if extra_negatives is None else torch.cat([z, extra_negatives])
    sim = z @ others.T / temperature
    idx = torch.arange(2 * n, device=z.device)
    sim[idx, idx] = float("-inf")  # not its own positive
    target = torch.cat([idx[n:], idx[:n]])
    return F.cross_entropy(sim, target)


def msc_loss(
    f1: torch.Tensor,
    f2: torch.Tensor,
    centre: torch.Tensor,
    temperature: float = 0.25,
    angular: bool = True,
    extra: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean-Shifted Contrastive loss of two views' pooled features ``f1``, ``f2``.

    Features are normalised, shifted by the (unit) ``centre`` of the pretrained features and
    normalised again before NT-Xent; ``angular`` adds ``||f/|f| - centre||^2`` (the reference
    implementation's angular centre loss). ``extra``: pooled features of auxiliary images, used
    as additional negatives.

    Returns:
        The loss (a scalar tensor).
    """
    u1, u2 = F.normalize(f1, dim=1), F.normalize(f2, dim=1)
    m1, m2 = F.normalize(u1 - centre, dim=1), F.normalize(u2 - centre, dim=1)
    mx = None if extra is None else F.normalize(F.normalize(extra, dim=1) - centre, dim=1)
    loss = nt_xent(m1, m2, temperature, mx)
    if angular:
        loss = loss + ((u1 - centre) ** 2).sum(1).mean() + ((u2 - centre) ** 2).sum(1).mean()
    return loss


def outlier_exposure_loss(f_aux: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Minus the squared distance of auxiliary images' unit features to the centre (bounded by
    4): minimising it pushes images not of the class away from the class centre.

    Returns:
        The loss (a scalar tensor).
    """
    return -((F.normalize(f_aux, dim=1) - centre) ** 2).sum(1).mean()
