"""Training loops for graph classifiers: lists of graphs (graph or node labels) and one graph with node masks."""
from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from seqcore.checkpoint import load_checkpoint, restore_training_state, save_checkpoint, training_state
from seqcore.ops.validation import check_bool, check_int

# The seqcore.checkpoint kind of the files fit_classifier writes.
CHECKPOINT_KIND = "graphs.fit_classifier"


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
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> FitResult:
    """Train with AdamW and cross-entropy, keep the weights of the best validation epoch, score them on test.

    ``train``, ``val``, ``test`` are lists of ``Data`` whose ``y`` is ``(1,)`` per graph or ``(N,)`` per node.
    For one graph with node masks (karate club), pass ``[data]`` three times and ``masks=("train_mask",
    "val_mask", "test_mask")``. A cosine schedule lowers the learning rate to zero over ``epochs``.

    With ``checkpoint``, the training state (weights, optimizer, schedule, random generators, the best epoch so
    far and the history) is written there after every epoch as a :mod:`seqcore.checkpoint` of kind
    ``"graphs.fit_classifier"`` (atomically: a crash keeps the previous one). ``resume=True`` continues from it
    exactly as the uninterrupted run would have; it must have been written with the same settings and model
    class (else :class:`seqcore.checkpoint.CheckpointError`, a ``ValueError``).
    """
    epochs = check_int("epochs", epochs, 1)
    if not train or not val or not test:
        raise ValueError("train, val and test must each hold at least one graph")
    resume = check_bool("resume", resume)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to continue from")
    torch.manual_seed(seed)
    train_mask, val_mask, test_mask = masks or (None, None, None)
    loader = DataLoader(list(train), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    best_val, best_epoch, best_state, seconds = -1.0, 0, None, 0.0
    settings = {"model": type(model).__name__, "epochs": epochs, "lr": lr, "weight_decay": weight_decay,
                "batch_size": batch_size, "masks": masks, "seed": seed, "num_train": len(train)}
    start = 0
    if resume:
        saved = load_checkpoint(checkpoint, kind=CHECKPOINT_KIND, config=settings).state
        start = restore_training_state(saved, model, optimizer, schedule)
        history, seconds = saved["history"], saved["train_seconds"]
        best_val, best_epoch, best_state = saved["best_val_acc"], saved["best_epoch"], saved["best_state"]
    bar = tqdm(range(start, epochs), desc=desc, disable=not progress, leave=False, initial=start, total=epochs)
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
        if checkpoint is not None:
            state = training_state(model, optimizer, schedule, step=epoch + 1, history=history,
                                   train_seconds=seconds, best_val_acc=best_val, best_epoch=best_epoch,
                                   best_state=best_state)
            save_checkpoint(checkpoint, state, kind=CHECKPOINT_KIND, config=settings)
    model.load_state_dict(best_state)
    test_acc = accuracy(model, test, mask=test_mask)
    return FitResult(best_val, test_acc, best_epoch, seconds, history)
