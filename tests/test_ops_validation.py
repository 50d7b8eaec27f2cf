"""Bad input gets a ValueError or TypeError naming the argument and what was expected."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seqcore.ops as ops


def qkv(b=1, t=6, h=2, dk=4, dv=3):
    return torch.randn(b, t, h, dk), F.normalize(torch.randn(b, t, h, dk), dim=-1), torch.randn(b, t, h, dv)


def test_shape_and_rank_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"q must have shape \(B, T, H, K\)"):
        ops.gla(q[0], k, v)
    with pytest.raises(ValueError, match=r"k must have shape"):
        ops.gla(q, k[..., :3], v)
    with pytest.raises(ValueError, match=r"v must have shape \(B, T, H, V\)"):
        ops.gla(q, k, v[:, :5])
    with pytest.raises(ValueError, match=r"g must have shape \(B, T, H\)"):
        ops.gla(q, k, v, -torch.rand(1, 6, 3))
    with pytest.raises(ValueError, match=r"beta must have shape \(B, T, H\)"):
        ops.delta_rule(q, k, v, torch.rand(1, 6))
    with pytest.raises(ValueError, match=r"g must have shape \(B, T, H\)"):
        ops.delta_rule(q, k, v, torch.rand(1, 6, 2), -torch.rand(1, 6, 2, 4))
    with pytest.raises(ValueError, match=r"a must have shape \(B, T, D\) like x"):
        ops.scan(torch.randn(2, 5, 3), torch.rand(2, 5, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, D\)"):
        ops.scan(torch.randn(5, 3), torch.rand(5, 3))
    with pytest.raises(ValueError, match="T=0"):
        ops.gla(*qkv(t=0))


def test_dtype_errors():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="q must be a floating-point tensor"):
        ops.gla(q.long(), k, v)
    with pytest.raises(TypeError, match="share a dtype"):
        ops.gla(q.double(), k, v)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ops.scan([[1.0]], torch.rand(1, 1, 1))


def test_value_range_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="g is a log decay and must be <= 0"):
        ops.gla(q, k, v, torch.rand(1, 6, 2) + 0.1)
    with pytest.raises(ValueError, match="g is a log decay"):
        ops.gla(q, k, v, torch.full((1, 6, 2), float("nan")))
    with pytest.raises(ValueError, match=r"beta must lie in \[0.0, 2.0\]"):
        ops.delta_rule(q, k, v, torch.full((1, 6, 2), 2.5))
    with pytest.raises(ValueError, match=r"beta must lie in"):
        ops.delta_rule(q, k, v, -torch.rand(1, 6, 2) - 0.01)


@pytest.mark.parametrize(
    "cu, message",
    [
        (torch.tensor([1, 3, 6]), "must start at 0"),
        (torch.tensor([0, 3, 3, 6]), "strictly increasing"),
        (torch.tensor([0, 4, 2, 6]), "strictly increasing"),
        (torch.tensor([0, 3, 5]), "must end at T=6"),
        (torch.tensor([0.0, 6.0]), "int32 or int64"),
        (torch.tensor([6]), "at least 2 entries"),
        (torch.tensor([[0, 6]]), "1-D"),
    ],
)
def test_cu_seqlens_errors(cu, message):
    q, k, v = qkv()
    with pytest.raises((ValueError, TypeError), match=message):
        ops.gla(q, k, v, cu_seqlens=cu)


def test_cu_seqlens_needs_batch_one():
    q, k, v = qkv(b=2)
    with pytest.raises(ValueError, match="batch size must be 1"):
        ops.gla(q, k, v, cu_seqlens=torch.tensor([0, 6]))


def test_initial_state_shape_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"initial_state must have shape \(N, H, K, V\) = \(2, 2, 4, 3\)"):
        ops.gla(q, k, v, initial_state=torch.zeros(1, 2, 4, 3), cu_seqlens=torch.tensor([0, 2, 6]))
    with pytest.raises(ValueError, match=r"initial_state must have shape \(N, D\)"):
        ops.scan(torch.randn(2, 5, 3), torch.rand(2, 5, 3), initial_state=torch.zeros(2, 4))


def test_backend_errors(monkeypatch):
    q, k, v = qkv()
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.gla(q, k, v, backend="cuda")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        ops.gla(q, k, v, backend="triton")


@pytest.mark.triton
def test_triton_rejects_float64():
    q, k, v = (t.double() for t in qkv())
    with pytest.raises(TypeError, match="backend='triton' supports float32/bfloat16/float16"):
        ops.gla(q, k, v, backend="triton")


def test_auto_backend_on_cpu_is_chunk():
    q, k, v = qkv(t=40)
    g = -torch.rand(1, 40, 2)
    auto, _ = ops.gla(q, k, v, g)
    chunk, _ = ops.gla(q, k, v, g, backend="chunk")
    assert torch.equal(auto, chunk)


def test_check_bool_takes_python_and_numpy_bools_only():
    """numpy 2 names its bool type ``numpy.bool`` (``bool_`` is an alias): both must pass, as must ``True``."""
    import numpy as np

    from seqcore.ops.validation import check_bool

    assert check_bool("flag", True) is True and check_bool("flag", np.True_) is True
    assert check_bool("flag", np.bool_(False)) is False
    for bad in ("no", 1, 0, None, np.int64(1), torch.tensor(True)):
        with pytest.raises(TypeError, match="flag must be a bool"):
            check_bool("flag", bad)


def test_value_checks_see_nan_anywhere():
    """The range checks reduce with aminmax, which must propagate NaN from any position."""
    from seqcore.ops.validation import check_finite, check_log_decay, check_range

    for n in (1, 7, 33, 4097):
        for pos in {0, n // 2, n - 1}:
            t = -torch.rand(n)
            t[pos] = float("nan")
            with pytest.raises(ValueError, match="no NaN"):
                check_log_decay("g", t)
            with pytest.raises(ValueError, match="no NaN"):
                check_range("beta", t, -1.0, 1.0)
            with pytest.raises(ValueError, match="must be finite"):
                check_finite("a", t)
    check_log_decay("g", torch.tensor([0.0, -float("inf")]))
