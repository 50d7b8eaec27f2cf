"""Data-parallel training of a domain model with DistributedDataParallel: a small LightNet on scikit-learn's digits.

    torchrun --standalone --nproc_per_node=2 examples/distributed/ddp_digits.py          # CPU, gloo
    torchrun --standalone --nproc_per_node=4 examples/distributed/ddp_digits.py --device cuda

Every rank builds the same model (same seed), DDP averages the gradients, and a ``DistributedSampler`` gives each
rank its share of every epoch's shuffled training images (the global batch is ``--batch-size`` x ranks). Rank 0
evaluates on the held-out digits after every epoch, shows a tqdm bar, and writes ``curves.png`` and
``history.json`` to ``--out``; ``--timeout`` (seconds, default 300) bounds how long the ranks wait for one that
stopped answering (see ``torchrun_launch.py``). Unlike ``long_sequence_lm.py`` (one sequence split across ranks)
this splits the data set; the two combine by giving each data-parallel replica its own sequence-parallel group.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/distributed/ddp_digits.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import timm  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402
from torchvision import transforms  # noqa: E402
from tqdm import tqdm  # noqa: E402

import vision  # noqa: E402,F401  (registers lightnet_* with timm)
from vision.data import digits_datasets  # noqa: E402
from torchrun_launch import add_timeout_option, run_under_torchrun  # noqa: E402  (beside this script)

# A LightNet small enough for 32x32 digits (as examples/vision/train.py uses).
MODEL_KWARGS = {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 4}


def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += int((model(images.to(device)).argmax(-1) == labels.to(device)).sum())
            total += len(labels)
    model.train()
    return correct / total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    add_timeout_option(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/distributed/ddp_digits"))
    args = parser.parse_args(argv)
    return run_under_torchrun(parser, args, train)


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set, test_set = digits_datasets(32, seed=args.seed, train_transform=to_tensor, test_transform=to_tensor)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=256)
    torch.manual_seed(args.seed)
    model = timm.create_model("lightnet_tiny", pretrained=False, num_classes=10, in_chans=1, img_size=32,
                              **MODEL_KWARGS).to(device)
    model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    history = []
    for epoch in tqdm(range(args.epochs), desc=f"DDP LightNet x {world} ranks", disable=rank != 0):
        sampler.set_epoch(epoch)
        total = torch.zeros(2, device=device)
        for images, labels in loader:
            loss = F.cross_entropy(model(images.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += torch.stack([loss.detach() * len(labels), torch.tensor(float(len(labels)), device=device)])
        dist.all_reduce(total)
        accuracy = evaluate(model.module, test_loader, device) if rank == 0 else float("nan")
        history.append({"epoch": epoch + 1, "train_loss": float(total[0] / total[1]), "test_accuracy": accuracy})
        if rank == 0:
            tqdm.write(f"epoch {epoch + 1}: train loss {history[-1]['train_loss']:.4f}, test accuracy {accuracy:.3f}")
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "history.json").write_text(json.dumps({"world": world, "history": history}))
        plot(history, args.out / "curves.png", world)
        print(f"\n{world} ranks, {args.epochs} epochs: test accuracy {history[-1]['test_accuracy']:.3f}")
    return {"world": world, "history": history}


def plot(history: list[dict[str, Any]], path: Path, world: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    epochs = [h["epoch"] for h in history]
    left.plot(epochs, [h["train_loss"] for h in history])
    left.set_xlabel("epoch")
    left.set_ylabel("train loss")
    right.plot(epochs, [h["test_accuracy"] for h in history])
    right.set_xlabel("epoch")
    right.set_ylabel("test accuracy")
    fig.suptitle(f"LightNet on digits, DDP over {world} ranks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
