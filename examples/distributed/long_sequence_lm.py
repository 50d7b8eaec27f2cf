"""Train a SeqLM on one long sequence split across processes (LASP-2 sequence parallelism, torch.distributed).

    torchrun --standalone --nproc_per_node=2 examples/distributed/long_sequence_lm.py            # CPU, gloo
    torchrun --standalone --nproc_per_node=2 examples/distributed/long_sequence_lm.py --length 262144
    torchrun --standalone --nproc_per_node=8 examples/distributed/long_sequence_lm.py --device cuda   # nccl
    torchrun --standalone --nproc_per_node=2 examples/distributed/long_sequence_lm.py --timeout 60   # fail fast

The data is one sequence of ``--length`` tokens from a seeded second-order Markov chain over ``--vocab`` symbols
(its entropy rate, the best loss any model can reach, is printed). Rank ``r`` holds the ``r``-th contiguous slice
of the inputs and of the next-token targets; the model's recurrent mixers exchange fixed-size states with the other
ranks (``seqcore.distributed.enable_sequence_parallel``), so each rank stores activations for its slice only.
Gradients of the replicated weights are averaged across ranks after each backward. At step 0 the script checks
the sharded loss against the same model run on the whole sequence in one process (``--no-check`` skips it).
Rank 0 shows a tqdm bar and writes ``loss.png`` and ``loss.json`` to ``--out``. ``--timeout`` (seconds, default
300) bounds how long the ranks wait for one that stopped answering (see ``torchrun_launch.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from typing import Any  # noqa: E402

from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/distributed/long_sequence_lm.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from seqcore.distributed import enable_sequence_parallel  # noqa: E402
from seqcore.nn import SeqLM  # noqa: E402
from torchrun_launch import add_timeout_option, run_under_torchrun  # noqa: E402  (beside this script)


def markov_sequence(length: int, vocab: int, seed: int) -> tuple[torch.Tensor, float]:
    """``length`` tokens of a second-order Markov chain with sparse random transitions, and its entropy rate
    (nats per token, under the chain's stationary pair distribution estimated from the sample)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(vocab, vocab, vocab, generator=gen) * 3.0
    probs = torch.softmax(logits, dim=-1)
    tokens = torch.empty(length, dtype=torch.long)
    tokens[:2] = torch.randint(vocab, (2,), generator=gen)
    uniform = torch.rand(length, generator=gen)
    cdf = probs.cumsum(-1)
    for t in range(2, length):
        row = cdf[tokens[t - 2], tokens[t - 1]]
        tokens[t] = min(int(torch.searchsorted(row, uniform[t])), vocab - 1)
    pairs = torch.bincount(tokens[:-1] * vocab + tokens[1:], minlength=vocab * vocab).float()
    pairs = (pairs / pairs.sum()).view(vocab, vocab)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return tokens, float((pairs * entropy).sum())


def slice_bounds(total: int, rank: int, world: int) -> tuple[int, int]:
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=65_536, help="tokens in the sequence")
    parser.add_argument("--vocab", type=int, default=16)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--mixer", default="gla", help="any recurrent seqcore.nn mixer")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    add_timeout_option(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/distributed/lm"))
    parser.add_argument("--no-check", action="store_true", help="skip the step-0 check against one process")
    args = parser.parse_args(argv)
    return run_under_torchrun(parser, args, train)


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    tokens, entropy = markov_sequence(args.length + 1, args.vocab, args.seed)
    start, stop = slice_bounds(args.length, rank, world)
    inputs = tokens[start:stop][None].to(device)
    targets = tokens[start + 1:stop + 1][None].to(device)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = SeqLM(args.vocab, args.dim, args.depth, mixer=args.mixer, num_heads=4, tie_weights=False).to(device)

    if not args.no_check:
        # The whole sequence in one process (on every rank, so no rank waits), against the sharded run below.
        with torch.no_grad():
            whole = F.cross_entropy(model(tokens[:-1][None].to(device)).flatten(0, 1), tokens[1:].to(device))
    enable_sequence_parallel(model, dist.group.WORLD)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    history = []
    bar = tqdm(range(args.steps), desc=f"SeqLM on {args.length:,} tokens x {world} ranks", disable=rank != 0)
    for step in bar:
        logits = model(inputs)
        # Sum over this rank's tokens / all tokens: the ranks' losses add up to the mean over the sequence.
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum") / args.length
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in model.parameters():  # replicated weights: sum the ranks' shares of the gradient
            dist.all_reduce(p.grad)
        optimizer.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        if step == 0 and not args.no_check:
            gap = abs(float(total) - float(whole))
            if rank == 0:
                tqdm.write(f"step-0 loss: sharded {float(total):.6f}, one process {float(whole):.6f} (gap {gap:.1e})")
            if gap > 1e-4:
                raise RuntimeError(f"the sharded loss {float(total)} differs from the whole-sequence loss {float(whole)}")
        history.append(float(total))
        bar.set_postfix(loss=f"{float(total):.4f}", floor=f"{entropy:.4f}")
    result = {"loss": history, "entropy_rate": entropy, "world": world, "length": args.length}
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "loss.json").write_text(json.dumps(result))
        plot(history, entropy, args, world)
        print(f"\nloss {history[0]:.4f} -> {history[-1]:.4f} nats/token after {args.steps} steps "
              f"(entropy rate {entropy:.4f}, uniform {math.log(args.vocab):.4f}); plot: {args.out / 'loss.png'}")
    return result


def plot(history: list[float], entropy: float, args: argparse.Namespace, world: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history, label=f"SeqLM ({args.mixer}), {world} ranks")
    ax.axhline(entropy, color="grey", linestyle=":", label="entropy rate")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(f"one sequence of {args.length:,} tokens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "loss.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
