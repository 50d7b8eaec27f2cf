"""Train a timm image classifier (default: lightnet_mini) on scikit-learn's digits or an ImageFolder directory.

    python examples/vision/train.py                                       # digits, lightnet_mini, 32x32
    python examples/vision/train.py --model-kwargs '{"mixer": "gla", "scan_orders": 4}'
    python examples/vision/train.py --data path/to/images --in-chans 3 --img-size 64 --epochs 30
    python examples/vision/train.py --resume runs/vision/checkpoint.pt   # continue an interrupted run
    python examples/vision/train.py --quick                               # seconds: checks the mechanics

Any model registered with timm can be named with ``--model`` (``import vision`` registers ``lightnet_*``); it is
built untrained (nothing is downloaded) with ``num_classes`` and ``in_chans`` from the data, ``img_size`` too for
``lightnet_*``, and ``--model-kwargs`` (JSON) on top: nothing else. The default ``lightnet_mini`` (patch 8, width
128, depth 4, 4 heads) suits 32x32 digits; ``lightnet_tiny`` is DeiT-Tiny's shape. Transforms, optimizer (AdamW) and the
warmup + cosine schedule come from timm's factories. Without ``--data`` the 1797 digits are split 75/25 with
stratification (``vision.data.digits_datasets``) and upscaled to ``--img-size`` as single-channel images; with
``--data`` the folder must hold ``train/<class>/`` and ``val/<class>/``. The held-out part is evaluated after
every epoch and only reported: the last epoch's model is the result, none is picked by its test score.

Each epoch writes ``checkpoint.pt`` (model, optimizer, scheduler, epoch, history, settings) and
``curves.png`` (loss and accuracy per epoch) to ``--out``. The settings record the model's timm name and every
argument it was built with, so ``vision.load_model("checkpoint.pt")`` rebuilds the trained model from the file
alone (see ``vision.checkpoints``). ``--resume`` continues from a checkpoint exactly as
the uninterrupted run would have: every epoch reseeds the random generators from ``(--seed, epoch)``, so its
shuffling, augmentation and dropout do not depend on what ran before. The script ends with a markdown table.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Python puts this script's folder first on sys.path; the project root in front makes `vision` the repo's package
# whether or not it is installed.
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/vision/train.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only: the script must run without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform  # noqa: E402
from timm.optim import create_optimizer_v2  # noqa: E402
from timm.scheduler import create_scheduler_v2  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset, Subset  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import vision  # noqa: E402,F401  (registers lightnet_* with timm)
from seqcore import checkpoint as ckpt  # noqa: E402
from seqcore.atomic import atomic_write  # noqa: E402
from vision.checkpoints import CHECKPOINT_KIND  # noqa: E402
from vision.data import digits_datasets, image_folder_datasets  # noqa: E402

# lightnet_mini on 32x32 digits: 8x8 patches give a 4x4 token grid, each token 2x2 pixels of the original 8x8
# digit. 4x4 patches (64 tokens) train about 5x slower on a CPU thread for this data, past a few minutes.
DEFAULT_MODEL = "lightnet_mini"
# Greyscale inputs are centred on mid-grey; RGB inputs get timm's ImageNet statistics.
GREY_MEAN, GREY_STD = (0.5,), (0.5,)
QUICK_TRAIN, QUICK_TEST = 96, 64  # --quick: images per part, enough for a few batches of each
DEFAULT_EPOCHS = 30


def json_object(text: str) -> dict[str, Any]:
    """``--model-kwargs``: a JSON object, or an argparse error that says what was wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"depth\": 6}}', got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options, with the defaults that depend on others (epochs, channels) filled in."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"any timm model name (default {DEFAULT_MODEL})")
    parser.add_argument("--model-kwargs", type=json_object, default={},
                        help='JSON dict passed to timm.create_model, e.g. \'{"mixer": "gla", "scan_orders": 4}\'')
    parser.add_argument("--data", type=Path, default=None,
                        help="ImageFolder root with train/<class>/ and val/<class>/ (default: scikit-learn's digits)")
    parser.add_argument("--in-chans", type=int, choices=(1, 3), default=None,
                        help="input channels (default: 1 for the digits, 3 for --data)")
    parser.add_argument("--img-size", type=int, default=32, help="side of the square input images")
    parser.add_argument("--epochs", type=int, default=None, help=f"default {DEFAULT_EPOCHS}, 1 with --quick")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate after the warmup")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-epochs", type=int, default=2, help="linear warmup (capped below --epochs)")
    parser.add_argument("--smoothing", type=float, default=0.1, help="label smoothing")
    parser.add_argument("--hflip", type=float, default=0.0,
                        help="horizontal flip probability (0 by default: a flipped digit is another symbol)")
    parser.add_argument("--out", type=Path, default=Path("runs/vision"), help="folder for checkpoint and plot")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint to continue from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TRAIN} training and {QUICK_TEST} test images, 1 epoch: checks the mechanics")
    args = parser.parse_args(argv)
    args.epochs = args.epochs if args.epochs is not None else (1 if args.quick else DEFAULT_EPOCHS)
    args.in_chans = args.in_chans or (3 if args.data is not None else 1)
    for name in ("epochs", "batch_size", "img_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.lr <= 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    return args


def build_transforms(args: argparse.Namespace) -> tuple[Any, Any]:
    """timm's training and evaluation pipelines for ``(in_chans, img_size, img_size)`` inputs."""
    mean, std = (GREY_MEAN, GREY_STD) if args.in_chans == 1 else (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    size = (args.in_chans, args.img_size, args.img_size)
    # Mild crops only: timm's default scale (0.08, 1) would often cut a small image down to a stroke. No colour
    # jitter: it is meaningless on greyscale digits.
    train = create_transform(size, is_training=True, scale=(0.7, 1.0), ratio=(0.85, 1.18), hflip=args.hflip,
                             color_jitter=None, mean=mean, std=std)
    # crop_pct 1: resize to the input size and keep the whole image (timm's default 0.875 crops the border).
    test = create_transform(size, is_training=False, crop_pct=1.0, mean=mean, std=std)
    return train, test


def build_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset, list[str], str]:
    """Train and test datasets, class names and a name of the data for the report."""
    train_tf, test_tf = build_transforms(args)
    if args.data is None:
        train, test = digits_datasets(args.img_size, seed=args.seed, train_transform=train_tf, test_transform=test_tf)
        name = "digits"
    else:
        train, test = image_folder_datasets(args.data, train_tf, test_tf, in_chans=args.in_chans)
        name = args.data.name
    classes = list(train.classes)
    if args.quick:
        # The digits split is already shuffled; an ImageFolder is sorted by class, so take an even spread.
        train = Subset(train, np.linspace(0, len(train) - 1, min(QUICK_TRAIN, len(train))).astype(int).tolist())
        test = Subset(test, np.linspace(0, len(test) - 1, min(QUICK_TEST, len(test))).astype(int).tolist())
    return train, test, classes, name


def model_kwargs(args: argparse.Namespace, num_classes: int) -> dict[str, Any]:
    """Every keyword argument ``args.model`` is built with: the data's classes and channels, the image size for
    LightNet (which records it), then ``--model-kwargs``. Stored in the checkpoint to rebuild the model."""
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": args.in_chans}
    if args.model.startswith("lightnet"):
        kwargs["img_size"] = args.img_size
    return {**kwargs, **args.model_kwargs}


def build_model(args: argparse.Namespace, kwargs: dict[str, Any]) -> nn.Module:
    """``args.model`` untrained, built with ``kwargs`` (:func:`model_kwargs`) and nothing else."""
    return timm.create_model(args.model, pretrained=False, **kwargs)


def seed_everything(seed: int, stream: int) -> torch.Generator:
    """Seed every generator from ``(seed, stream)`` alone (stream 0: model init, ``e + 1``: epoch ``e``), so a
    resumed epoch repeats the original one exactly; returns a generator for the DataLoader's shuffling."""
    state = np.random.SeedSequence([seed, stream]).generate_state(3)
    random.seed(int(state[0]))  # timm's random crops draw from Python's generator
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[2]))
    return torch.Generator().manual_seed(int(state[2]))


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA devices that support it (no loss scaling needed); full precision elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, scheduler: Any,
                criterion: nn.Module, epoch: int, device: torch.device) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, accuracy, seconds and images."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    updates = epoch * len(loader)
    start = time.perf_counter()
    for images, labels in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False):
        images, labels = images.to(device), labels.to(device)
        with autocast(device):
            logits = model(images)
            loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        updates += 1
        scheduler.step_update(num_updates=updates)
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
    scheduler.step(epoch + 1)
    return {"train_loss": total_loss / seen, "train_acc": correct / seen,
            "train_s": time.perf_counter() - start, "train_images": seen}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module, device: torch.device) -> dict[str, float]:
    """Mean loss and accuracy on ``loader``."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with autocast(device):
            logits = model(images)
        total_loss += criterion(logits.float(), labels).item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
    return {"test_loss": total_loss / seen, "test_acc": correct / seen}


def settings(args: argparse.Namespace, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What defines a run, stored in checkpoints so a resume can refuse a different one; ``model`` and
    ``model_kwargs`` (all of ``kwargs``) are what :func:`vision.load_model` rebuilds the model from."""
    keys = ("model", "data", "in_chans", "img_size", "epochs", "batch_size", "lr", "weight_decay",
            "warmup_epochs", "smoothing", "hflip", "seed", "quick")
    run = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items() if key in keys}
    return {**run, "model_kwargs": kwargs}


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epoch: int,
                    history: list[dict[str, float]], config: dict[str, Any]) -> None:
    """Write the state after ``epoch`` completed epochs as a :mod:`seqcore.checkpoint` (atomic: a crash or a full
    disk leaves the previous checkpoint)."""
    state = ckpt.training_state(model, optimizer, scheduler, step=epoch, history=history)
    ckpt.save_checkpoint(path, state, kind=CHECKPOINT_KIND, config=config)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    config: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
    """Restore the states saved by :func:`save_checkpoint`; returns the completed epochs and the history. A
    checkpoint of a different run (other settings), or a file that is not a safe checkpoint, exits with the reason."""
    try:
        saved = ckpt.load_checkpoint(path, kind=CHECKPOINT_KIND, config=config)
    except FileNotFoundError:
        raise SystemExit(f"--resume {path}: no such checkpoint") from None
    except ckpt.CheckpointError as err:
        raise SystemExit(f"--resume {path} cannot be used: {err}") from None
    epoch = ckpt.restore_training_state(saved.state, model, optimizer, scheduler)
    return epoch, saved.state["history"]


def plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Loss and accuracy of both parts per epoch, saved to ``path``."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for part in ("train", "test"):
        ax_loss.plot(epochs, [row[f"{part}_loss"] for row in history], marker="o", label=part)
        ax_acc.plot(epochs, [row[f"{part}_acc"] for row in history], marker="o", label=part)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=100, format="png")
    plt.close(fig)


def summarize(args: argparse.Namespace, model: nn.Module, history: list[dict[str, float]], data: str) -> dict[str, Any]:
    """Final metrics: the last epoch's test scores and the training time over all epochs, resumed ones included."""
    train_s = sum(row["train_s"] for row in history)
    last = history[-1]
    return {"model": args.model, "data": data, "epochs": len(history),
            "params": sum(p.numel() for p in model.parameters()), "test_acc": last["test_acc"],
            "test_loss": last["test_loss"], "train_acc": last["train_acc"], "train_time_s": train_s,
            "images_per_s": sum(row["train_images"] for row in history) / train_s, "history": history}


def print_table(metrics: dict[str, Any]) -> None:
    """The final metrics as a one-row markdown table."""
    print("\n| model | data | params | epochs | test acc | train time (s) | images/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print(f"| {metrics['model']} | {metrics['data']} | {metrics['params']:,} | {metrics['epochs']} | "
          f"{metrics['test_acc']:.4f} | {metrics['train_time_s']:.1f} | {metrics['images_per_s']:.1f} |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (or continue) as the command line says; returns :func:`summarize`'s metrics of the final model."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    seed_everything(args.seed, 0)
    train_set, test_set, classes, data_name = build_datasets(args)
    kwargs = model_kwargs(args, len(classes))
    model = build_model(args, kwargs).to(device)
    train_loader_len = -(-len(train_set) // args.batch_size)
    optimizer = create_optimizer_v2(model, opt="adamw", lr=args.lr, weight_decay=args.weight_decay)
    scheduler, _ = create_scheduler_v2(
        optimizer, sched="cosine", num_epochs=args.epochs, warmup_epochs=min(args.warmup_epochs, args.epochs - 1),
        warmup_lr=args.lr * 0.01, min_lr=args.lr * 0.01, step_on_epochs=False, updates_per_epoch=train_loader_len,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    config = settings(args, kwargs)
    start_epoch, history = 0, []
    if args.resume is not None:
        start_epoch, history = load_checkpoint(args.resume, model, optimizer, scheduler, config)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint, plot = args.out / "checkpoint.pt", args.out / "curves.png"
    test_loader = DataLoader(test_set, batch_size=args.batch_size, num_workers=args.workers)

    print(f"{args.model} ({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) on {data_name}: "
          f"{len(train_set)} training / {len(test_set)} test images, "
          f"{len(classes)} classes, {sum(p.numel() for p in model.parameters()):,} parameters, device {device}")
    for epoch in tqdm(range(start_epoch, args.epochs), desc="training", initial=start_epoch, total=args.epochs):
        generator = seed_everything(args.seed, epoch + 1)
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=generator,
                                  num_workers=args.workers)
        row = {"epoch": epoch + 1, **train_epoch(model, train_loader, optimizer, scheduler, criterion, epoch, device),
               **evaluate(model, test_loader, criterion, device)}
        history.append(row)
        tqdm.write(f"epoch {epoch + 1}/{args.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
                   f" | test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f} | {row['train_s']:.1f} s")
        save_checkpoint(checkpoint, model, optimizer, scheduler, epoch + 1, history, config)
        plot_history(history, plot, f"{args.model} on {data_name}")

    metrics = summarize(args, model, history, data_name)
    print_table(metrics)
    print(f"\ncheckpoint: {checkpoint}\nplot: {plot}")
    return metrics


if __name__ == "__main__":
    main()
