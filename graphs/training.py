"""Training loops for graph classifiers: lists of graphs (graph or node labels) and one graph with node masks."""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm


@dataclass
class FitResult:
    """What :func:`fit_classifier` measured.

    Attributes:
        best_val_acc: highest validation accuracy over the epochs.
        test_acc: test accuracy of the weights from that epoch (restored into the model).
        best_epoch: that epoch (0-based).
        train_seconds: wall time of the training epochs (evaluation excluded).
        history: per-epoch ``loss``, ``train_acc`` and ``val_acc``.
    """

    best_val_acc: float
    test_acc: float
    best_epoch: int
    train_seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)


def _logits(model: nn.Module, batch: Batch | Data) -> Tensor:
    return model(batch.x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs)


def _targets(batch: Batch | Data, mask_name: str | None) -> tuple[Tensor, Tensor | None]:
    mask = getattr(batch, mask_name) if mask_name else None
    return batch.y.view(-1), mask


@torch.no_grad()
def accuracy(model: nn.Module, graphs: Sequence[Data], batch_size: int = 64, mask: str | None = None) -> float:
    """Fraction of correct argmax predictions (graph- or node-level, per ``y``'s shape); ``mask`` names a boolean
    node attribute that selects the nodes scored."""
    model.eval()
    correct = total = 0
    for batch in DataLoader(list(graphs), batch_size=batch_size):
        y, m = _targets(batch, mask)
        pred = _logits(model, batch).argmax(-1)
        if m is not None:
            pred, y = pred[m], y[m]
        correct += int((pred == y).sum())
        total += y.numel()
    if total == 0:
        raise ValueError("nothing to score: no graphs or an empty mask")
    return correct / total


def fit_classifier(
    model: nn.Module,
    train: Sequence[Data],
    val: Sequence[Data],
    test: Sequence[Data],
    *,
    epochs: int = 50,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 32,
    masks: tuple[str, str, str] | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> FitResult:
    """Train with AdamW and cross-entropy, keep the weights of the best validation epoch, score them on test.

    ``train``, ``val``, ``test`` are lists of ``Data`` whose ``y`` is ``(1,)`` per graph or ``(N,)`` per node.
    For one graph with node masks (karate club), pass ``[data]`` three times and ``masks=("train_mask",
    "val_mask", "test_mask")``. A cosine schedule lowers the learning rate to zero over ``epochs``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not train or not val or not test:
        raise ValueError("train, val and test must each hold at least one graph")
    torch.manual_seed(seed)
    train_mask, val_mask, test_mask = masks or (None, None, None)
    loader = DataLoader(list(train), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    best_val, best_epoch, best_state, seconds = -1.0, 0, None, 0.0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        begin, losses, correct, total = time.perf_counter(), [], 0, 0
        for batch in loader:
            y, m = _targets(batch, train_mask)
            logits = _logits(model, batch)
            if m is not None:
                logits, y = logits[m], y[m]
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            correct += int((logits.argmax(-1) == y).sum())
            total += y.numel()
        seconds += time.perf_counter() - begin
        val_acc = accuracy(model, val, mask=val_mask)
        history["loss"].append(sum(losses) / len(losses))
        history["train_acc"].append(correct / max(total, 1))
        history["val_acc"].append(val_acc)
        if val_acc > best_val:
            best_val, best_epoch, best_state = val_acc, epoch, copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", val=f"{val_acc:.3f}")
    model.load_state_dict(best_state)
    test_acc = accuracy(model, test, mask=test_mask)
    return FitResult(best_val, test_acc, best_epoch, seconds, history)
