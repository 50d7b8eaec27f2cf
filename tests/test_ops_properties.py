"""Property tests: the chunked backend equals the float64 reference on random shapes and packings."""
from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opcases import Case, make_inputs, outputs_and_grads, rel_err

# Chunk boundaries are where off-by-one errors live: lengths straddle multiples of 4, 16 and 64.
lengths = st.integers(min_value=1, max_value=150)


@st.composite
def cases(draw):
    family = draw(st.sampled_from(["scan", "gla", "delta_rule"]))
    varlen = draw(st.booleans())
    lens = tuple(draw(st.lists(lengths, min_size=1, max_size=4)))
    if not varlen:
        lens = (lens[0],) * len(lens)
    gates = {"scan": [None], "gla": [None, "head", "key"], "delta_rule": [None, "head"]}[family]
    return Case(
        family,
        lens=lens,
        varlen=varlen,
        heads=draw(st.integers(1, 3)),
        dk=draw(st.integers(1, 24)),
        dv=draw(st.integers(1, 24)),
        gate=draw(st.sampled_from(gates)),
        strength=draw(st.sampled_from([0.1, 1.0, 20.0])),
        initial_state=draw(st.booleans()),
        reverse=draw(st.booleans()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), seed=st.integers(0, 2**31 - 1))
def test_chunk_matches_reference(case: Case, seed: int) -> None:
    inputs = make_inputs(case, seed)
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    # In float64 the chunked form must equal the step loop to rounding: any logic error shows here.
    exact = outputs_and_grads(case, inputs, "chunk", dtype=torch.float64, seed=seed)
    out = outputs_and_grads(case, inputs, "chunk", seed=seed)
    for name in ref:
        assert rel_err(exact[name], ref[name]) < 1e-10, (name, str(case))
        # Gate gradients are sums of cancelling O(1) terms: with strong gates float32 leaves up to ~5e-5
        # (seen: delta_rule, K = 1, decay 20 per step, while float64 agreed to 5e-14).
        tolerance = 1e-4 if name == "dg" else 2e-5
        assert rel_err(out[name], ref[name]) < tolerance, (name, str(case))
