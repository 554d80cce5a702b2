"""The training loop of :func:`oneclass.embed.finetune.finetune` over cached trunk maps.

Each epoch draws shuffled batches of feature-map views (cached augmented views, flipped and
cropped at feature level), runs the trainable top, takes the mode's loss and steps AdamW. After each
epoch (and before the first, where there is something to compare) the held-out slice is scored;
the best state is kept and training stops after ``patience`` epochs without improvement.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from tqdm.auto import tqdm


def batch_views(maps, idx: np.ndarray, rng: np.random.Generator, exclude=None):
    """Feature-map views for a batch: a random cached view each (not ``exclude``'s), a random
    horizontal flip each and one random crop window (at least 3/4 of each side) per batch.

    Returns:
        ``(float tensor, chosen view indices)``.
    """
    import torch

    n_views = maps.shape[1]
    v = rng.integers(0, n_views, size=len(idx))
    if exclude is not None and n_views > 1:
        same = v == exclude
        v[same] = (v[same] + rng.integers(1, n_views, size=int(same.sum()))) % n_views
    x = maps[torch.as_tensor(idx), torch.as_tensor(v)].float()
    flip = torch.as_tensor(rng.random(len(idx)) < 0.5, device=x.device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    h, w = x.shape[2:]
    ch, cw = int(rng.integers((3 * h + 3) // 4, h + 1)), int(rng.integers((3 * w + 3) // 4, w + 1))
    t, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return x[:, :, t : t + ch, left : left + cw].contiguous(), v


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC of positives' scores against negatives' (NaN when either is empty)."""
    from sklearn.metrics import roc_auc_score

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def knn_scores(train: np.ndarray, test: np.ndarray, k: int = 2) -> np.ndarray:
    """Mean cosine similarity to the ``k`` nearest training vectors (unit rows)."""
    sim = test @ train.T
    k = min(k, train.shape[0])
    return np.sort(sim, axis=1)[:, -k:].mean(1)


def _pooled(top, maps, idx: np.ndarray, batch: int = 64) -> np.ndarray:
    """The top's pooled features of the plain view (view 0) of ``idx``, eval mode."""
    import torch

    top.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(idx), batch):
            sel = torch.as_tensor(idx[i : i + batch])
            out.append(top(maps[sel, 0].float()).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 1280), np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Signed square root, then L2-normalised rows (the ``"unit"`` output)."""
    x = np.sign(x) * np.sqrt(np.abs(x) + 1e-6)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def train_top(
    top,
    maps: dict,
    masks: dict,
    *,
    mode: str,
    epochs: int,
    lr: float,
    options: Any,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[dict, dict | None, dict]:
    """Train ``top`` (in place) on the cached ``maps`` of positives/negatives/auxiliary.

    Args:
        top: the :class:`~oneclass.embed.finetune_net.EffNetTop`.
        maps: set name -> ``(n, views, C, H, W)`` trunk maps.
        masks: set name -> held-out mask.
        mode: ``"msc"``, ``"binary"`` or ``"naive"``.
        epochs, lr: training budget and the top's learning rate.
        options: the :class:`~oneclass.embed.finetune.FinetuneOptions`.
        rng: the seeded generator for batches and views.
        progress: show a progress bar over epochs.

    Returns:
        ``(best top state_dict, best head state_dict or None, history)``; history has
        ``"loss"`` and ``"val"`` per epoch (``val[0]`` before training, NaN where not scored) and
        ``"best_epoch"``.
    """
    import torch

    from oneclass.embed.finetune_net import (
        binary_loss,
        msc_loss,
        outlier_exposure_loss,
        signed_sqrt,
    )

    device = next(top.parameters()).device
    pos = maps["positives"]
    tr = {k: np.flatnonzero(~masks[k]) for k in maps}
    ho = {k: np.flatnonzero(masks[k]) for k in maps}
    params: list[dict] = [{"params": [p for p in top.parameters() if p.requires_grad], "lr": lr}]
    head: torch.nn.Linear | None = None
    if mode in ("binary", "naive"):
        head = torch.nn.Linear(1280, 1).to(device)
        params.append({"params": head.parameters(), "lr": options.head_lr})
    opt = torch.optim.AdamW(params, weight_decay=options.weight_decay)
    dropout = torch.nn.Dropout(0.2)
    centre = torch.zeros(1280, device=device)  # set below for msc
    if mode == "msc":  # the unit centre of the pretrained features of the training positives
        c = _unit(_pooled(top, pos, tr["positives"])).mean(0)
        centre = torch.as_tensor(c / max(np.linalg.norm(c), 1e-12), device=device)

    def validate() -> float:
        if mode == "binary" and len(ho["positives"]) and len(ho["negatives"]):
            sp = _pooled(top, pos, ho["positives"]) @ head_w() + head_b()
            sn = _pooled(top, maps["negatives"], ho["negatives"]) @ head_w() + head_b()
            return roc_auc(sp, sn)
        if mode == "msc" and "auxiliary" in maps and len(ho["positives"]) and len(ho["auxiliary"]):
            train = _unit(_pooled(top, pos, tr["positives"]))
            sp = knn_scores(train, _unit(_pooled(top, pos, ho["positives"])))
            sa = knn_scores(train, _unit(_pooled(top, maps["auxiliary"], ho["auxiliary"])))
            return roc_auc(sp, sa)
        return math.nan

    def head_w() -> np.ndarray:
        assert head is not None
        return head.weight.detach().cpu().numpy()[0]

    def head_b() -> float:
        assert head is not None
        return float(head.bias.detach().cpu().numpy()[0])

    history: dict[str, Any] = {"loss": [], "val": []}
    best = (validate() if mode == "msc" else math.nan, 0)
    history["val"].append(best[0])
    best_state = (
        copy.deepcopy(top.state_dict()),
        copy.deepcopy(head.state_dict()) if head is not None else None,
    )
    bs = int(options.batch_size)
    if mode == "binary":
        pool = [("positives", i) for i in tr["positives"]] + [
            ("negatives", i) for i in tr["negatives"]
        ]
        pos_weight = len(tr["negatives"]) / max(len(tr["positives"]), 1)
    else:
        pool = [("positives", i) for i in tr["positives"]]
    aux_tr = tr.get("auxiliary", np.empty(0, int))
    stale = 0
    bar = tqdm(range(1, epochs + 1), disable=not progress, desc=f"finetune: {mode}", unit="epoch")
    for epoch in bar:
        top.train()
        if head is not None:
            head.train()
        losses = []
        order = rng.permutation(len(pool))
        for s in range(0, len(order), bs):
            chunk = [pool[j] for j in order[s : s + bs]]
            if mode == "msc" and len(chunk) < 2:
                continue
            if mode == "binary":
                parts = []
                for name in ("positives", "negatives"):
                    idx = np.array([i for n, i in chunk if n == name], dtype=int)
                    if len(idx):
                        parts.append((name, idx))
                feats, labels = [], []
                for name, idx in parts:
                    x, _ = batch_views(maps[name], idx, rng)
                    feats.append(top(x))
                    labels.append(torch.full((len(idx),), float(name == "positives")))
                assert head is not None
                logits = head(dropout(torch.cat(feats)))[:, 0]
                loss = binary_loss(logits, torch.cat(labels).to(device), pos_weight)
            else:
                idx = np.array([i for _, i in chunk], dtype=int)
                x1, v1 = batch_views(pos, idx, rng)
                if mode == "naive":
                    assert head is not None
                    logits = head(dropout(top(x1)))[:, 0]
                    loss = binary_loss(logits, torch.ones_like(logits), 1.0)
                else:
                    x2, _ = batch_views(pos, idx, rng, exclude=v1)
                    fa = None
                    if len(aux_tr):
                        pick = rng.choice(aux_tr, size=min(len(aux_tr), len(idx)), replace=False)
                        fa = signed_sqrt(top(batch_views(maps["auxiliary"], pick, rng)[0]))
                    loss = msc_loss(
                        signed_sqrt(top(x1)),
                        signed_sqrt(top(x2)),
                        centre,
                        options.temperature,
                        options.angular,
                        fa,
                    )
                    if fa is not None:
                        loss = loss + options.oe_weight * outlier_exposure_loss(fa, centre)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history["loss"].append(float(np.mean(losses)) if losses else math.nan)
        val = validate()
        history["val"].append(val)
        bar.set_postfix(loss=history["loss"][-1], val=val)
        if math.isnan(val):  # no validation: the fixed budget, keep the last state
            best_state = (top.state_dict(), head.state_dict() if head is not None else None)
            best = (val, epoch)
            continue
        if math.isnan(best[0]) or val > best[0] + 1e-4:
            best, stale = (val, epoch), 0
            best_state = (
                copy.deepcopy(top.state_dict()),
                copy.deepcopy(head.state_dict()) if head is not None else None,
            )
        else:
            stale += 1
            if stale >= options.patience:
                break
    bar.close()
    history["best_epoch"] = int(best[1])
    top.eval()
    return best_state[0], best_state[1], history
