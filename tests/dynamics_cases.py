"""Hand-set latent models shared by the dynamics tests."""
from __future__ import annotations

import torch

from timeseries.dynamics.models import ShallowPLRNN


def shallow_1d(a: float, w1: float, w2: float, h2: float, h1: float = 0.0) -> ShallowPLRNN:
    """1-D map ``z -> a z + w1 relu(w2 z + h2) + h1`` in float64."""
    model = ShallowPLRNN(1, 1).double()
    with torch.no_grad():
        model.A.fill_(a)
        model.W1.fill_(w1)
        model.W2.fill_(w2)
        model.h2.fill_(h2)
        model.h1.fill_(h1)
    return model
