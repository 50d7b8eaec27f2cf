"""What both distributed examples do around their training: check they run under torchrun, join the process group
(nccl for CUDA, else gloo) with the ``--timeout`` it adds, pick this rank's device, and leave the group however
training ends.

The timeout is how long a rank waits in a collective for the others. A rank that dies is noticed at once (its
connections close); one that raised an error and stays alive, or stopped calling the same collectives, is noticed
only when the timeout runs out. torch's own default is 30 minutes for gloo and 10 for nccl; these examples use 5.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


DEFAULT_TIMEOUT_S = 300.0


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: the process group's timeout (see the module docstring)."""
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds a rank waits in a collective for the others before it fails (a peer that "
                             f"raised and stays alive is noticed only then; default {DEFAULT_TIMEOUT_S:g})")


def run_under_torchrun(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       train: Callable[[argparse.Namespace, int, int, torch.device], Any]) -> Any:
    """``train(args, rank, world, device)`` inside the process group torchrun describes (``args.device``: "cpu"
    or "cuda"; with CUDA each rank takes the GPU of its ``LOCAL_RANK``; ``args.timeout``: the group's timeout in
    seconds, from :func:`add_timeout_option`)."""
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        parser.error(f"--timeout must be a finite number of seconds > 0, got {args.timeout}")
    if "RANK" not in os.environ:
        parser.error("launch with torchrun, e.g. torchrun --standalone --nproc_per_node=2 " + sys.argv[0])
    device = torch.device(args.device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            timeout=datetime.timedelta(seconds=args.timeout))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    torch.set_num_threads(1)
    try:
        return train(args, dist.get_rank(), dist.get_world_size(), device)
    finally:
        dist.destroy_process_group()
