"""What both distributed examples do around their training: check they run under torchrun, join the process group
(nccl for CUDA, else gloo), pick this rank's device, and leave the group however training ends."""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


def run_under_torchrun(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       train: Callable[[argparse.Namespace, int, int, torch.device], Any]) -> Any:
    """``train(args, rank, world, device)`` inside the process group torchrun describes (``args.device``: "cpu"
    or "cuda"; with CUDA each rank takes the GPU of its ``LOCAL_RANK``)."""
    if "RANK" not in os.environ:
        parser.error("launch with torchrun, e.g. torchrun --standalone --nproc_per_node=2 " + sys.argv[0])
    device = torch.device(args.device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=5))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    torch.set_num_threads(1)
    try:
        return train(args, dist.get_rank(), dist.get_world_size(), device)
    finally:
        dist.destroy_process_group()
