"""Files and guards the graph tests share: TU-format data sets written to disk, and a no-network fixture."""
from __future__ import annotations

import socket

import pytest


@pytest.fixture
def offline(monkeypatch):
    """Make any attempt at network access fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import torch_geometric.data.download as download
    import torch_geometric.io.fs as fs

    monkeypatch.setattr(download, "download_url", refuse)
    monkeypatch.setattr(fs, "cp", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def write_tu(root, name: str, graphs: list[tuple[int, list[tuple[int, int]], int, list[int]]]) -> None:
    """TU raw text files: one-based node ids numbered across the data set, one line per edge direction."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    lines = {"A": [], "graph_indicator": [], "graph_labels": [], "node_labels": []}
    offset = 0
    for g, (n, edges, label, node_labels) in enumerate(graphs, start=1):
        for u, v in edges:
            lines["A"] += [f"{u + offset + 1}, {v + offset + 1}", f"{v + offset + 1}, {u + offset + 1}"]
        lines["graph_indicator"] += [str(g)] * n
        lines["graph_labels"].append(str(label))
        lines["node_labels"] += [str(c) for c in node_labels]
        offset += n
    for part, content in lines.items():
        (raw / f"{name}_{part}.txt").write_text("\n".join(content) + "\n")
