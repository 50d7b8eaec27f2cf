"""Tests for the piecewise-linear latent models, observation models and their analysis."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from dynamics_cases import shallow_1d
from timeseries.dynamics.analysis import (
    cycles,
    fixed_points,
    lyapunov_spectrum,
    max_lyapunov_exponent,
)
from timeseries.dynamics.models import (
    ALRNN,
    PLRNN,
    DendriticPLRNN,
    DiagonalLinearRNN,
    LatentModel,
    ShallowPLRNN,
)
from timeseries.dynamics.observation import AffineObservation, IdentityObservation

M, K = 4, 2

FACTORIES = {
    "plrnn": lambda k: PLRNN(M, input_dim=k),
    "dendritic": lambda k: DendriticPLRNN(M, 3, input_dim=k),
    "dendritic_unclipped": lambda k: DendriticPLRNN(M, 3, input_dim=k, clipped=False),
    "shallow": lambda k: ShallowPLRNN(M, 6, input_dim=k),
    "shallow_clipped": lambda k: ShallowPLRNN(M, 6, input_dim=k, clipped=True),
    "alrnn": lambda k: ALRNN(M, 2, input_dim=k),
}


def make(name: str, input_dim: int = 0) -> LatentModel:
    torch.manual_seed(0)
    model = FACTORIES[name](input_dim).double()
    with torch.no_grad():
        # larger weights than the init so that many regions are visited
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", list(FACTORIES))
def test_shapes_and_forward_equals_repeated_step(name: str) -> None:
    model = make(name, input_dim=K)
    z0 = torch.randn(3, M, dtype=torch.float64)
    s = torch.randn(3, 5, K, dtype=torch.float64)
    assert model.step(z0, s[:, 0]).shape == (3, M)
    traj = model(z0, 5, s)
    assert traj.shape == (3, 5, M)
    z = z0
    for t in range(5):
        z = model.step(z, s[:, t])
        torch.testing.assert_close(traj[:, t], z)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_inputs_enter_as_c_s(name: str) -> None:
    with_inputs = make(name, input_dim=K)
    without = FACTORIES[name](0).double()
    without.load_state_dict({k: v for k, v in with_inputs.state_dict().items() if k != "C"})
    z = torch.randn(3, M, dtype=torch.float64)
    s = torch.randn(3, K, dtype=torch.float64)
    torch.testing.assert_close(with_inputs.step(z, s), without.step(z) + s @ with_inputs.C.T)


def test_default_dtype_is_float32() -> None:
    for name in FACTORIES:
        assert all(p.dtype == torch.float32 for p in FACTORIES[name](K).parameters())


def test_plrnn_ignores_diagonal_of_w() -> None:
    model = make("plrnn")
    z = torch.randn(5, M, dtype=torch.float64)
    before = model.step(z)
    with torch.no_grad():
        model.W.diagonal().add_(10.0)
    torch.testing.assert_close(model.step(z), before)
    expected = model.A * z + torch.relu(z) @ (model.W - torch.diag(model.W.diagonal())).T + model.h
    torch.testing.assert_close(before, expected)


def test_plrnn_init_is_normalized_positive_definite() -> None:
    torch.manual_seed(1)
    model = PLRNN(6)
    k = (torch.diag(model.A) + model.W).detach().double()
    eig = torch.linalg.eigvalsh(k)
    assert eig.min() > 0 and abs(eig.max().item() - 1.0) < 1e-5
    assert torch.all(model.h == 0)


def test_clipped_shallow_formula() -> None:
    model = make("shallow_clipped")
    z = torch.randn(5, M, dtype=torch.float64)
    w2z = z @ model.W2.T
    expected = (
        model.A * z + (torch.relu(w2z + model.h2) - torch.relu(w2z)) @ model.W1.T + model.h1
    )
    torch.testing.assert_close(model.step(z), expected)


def test_clipped_dendritic_formula() -> None:
    model = make("dendritic")
    z = torch.randn(5, M, dtype=torch.float64)
    phi = sum(
        model.alpha[b] * (torch.relu(z - model.H[:, b]) - torch.relu(z)) for b in range(3)
    )
    w = model.W - torch.diag(model.W.diagonal())
    torch.testing.assert_close(model.step(z), model.A * z + phi @ w.T + model.h)


def test_alrnn_without_nonlinear_units_has_no_linear_decay() -> None:
    # P = 0 makes the ALRNN linear but with a full W, so it is not an elementwise scan
    torch.manual_seed(0)
    model = ALRNN(M, 0).double()
    assert model.linear_decay() is None
    z = torch.randn(5, M, dtype=torch.float64)
    torch.testing.assert_close(model.step(z), z @ (torch.diag(model.A) + model.W).T + model.h)
    for name in FACTORIES:
        assert make(name).linear_decay() is None


def test_diagonal_linear_rnn_formula_and_decay() -> None:
    torch.manual_seed(0)
    model = DiagonalLinearRNN(M, input_dim=K).double()
    assert model.n_switches == 0
    assert bool(((model.A >= 0.5) & (model.A <= 0.99)).all())
    with torch.no_grad():
        model.h.normal_()
    decay = model.linear_decay()
    assert decay is model.A
    z, s = torch.randn(5, M, dtype=torch.float64), torch.randn(5, K, dtype=torch.float64)
    zero = torch.zeros_like(z)
    # the linear_decay contract: F(z) = a * z + F(0) exactly
    torch.testing.assert_close(model.step(z, s), decay * z + model.step(zero, s), rtol=0, atol=1e-15)
    torch.testing.assert_close(model.step(z, s), model.A * z + model.h + s @ model.C.T)
    seq = torch.randn(5, 7, K, dtype=torch.float64)
    out = model(z, 7, seq)
    prev = z
    for t in range(7):
        prev = model.step(prev, seq[:, t])
        torch.testing.assert_close(out[:, t], prev)


def test_diagonal_linear_rnn_jacobian_region_and_regularization() -> None:
    torch.manual_seed(0)
    model = DiagonalLinearRNN(3).double()
    z = torch.randn(4, 3, dtype=torch.float64)
    assert model.activation_pattern(z).shape == (4, 0)
    auto = torch.autograd.functional.jacobian(model.step, z).diagonal(dim1=0, dim2=2).permute(2, 0, 1)
    torch.testing.assert_close(model.jacobian(z), auto)
    jac, c = model.affine_map(z[0])
    torch.testing.assert_close(z[0] @ jac.T + c, model.step(z[:1])[0])
    expected = ((1 - model.A) ** 2).sum() + (model.h**2).sum()
    torch.testing.assert_close(model.regularization(), expected)
    assert model.regularization().shape == ()


def test_alrnn_first_units_pass_through_identity() -> None:
    model = make("alrnn")
    z = -torch.rand(5, M, dtype=torch.float64)  # all negative: ReLU would zero them
    phi = model.phi(z)
    torch.testing.assert_close(phi[:, : M - 2], z[:, : M - 2])
    assert torch.all(phi[:, M - 2 :] == 0)
    torch.testing.assert_close(model.step(z), model.A * z + phi @ model.W.T + model.h)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_jacobian_matches_autograd(name: str) -> None:
    model = make(name)
    z = torch.randn(4, M, dtype=torch.float64)
    jac = model.jacobian(z)
    assert jac.shape == (4, M, M)
    for i in range(4):
        ref = torch.autograd.functional.jacobian(lambda x: model.step(x[None])[0], z[i])
        torch.testing.assert_close(jac[i], ref)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_affine_map_reproduces_step(name: str) -> None:
    model = make(name)
    for z in torch.randn(4, M, dtype=torch.float64):
        jac, c = model.affine_map(z)
        assert jac.shape == (M, M) and c.shape == (M,)
        torch.testing.assert_close(jac @ z + c, model.step(z[None])[0])
        # the same map holds at a nearby point of the same region
        z2 = z + 1e-6
        if torch.equal(model.activation_pattern(z2), model.activation_pattern(z)):
            torch.testing.assert_close(jac @ z2 + c, model.step(z2[None])[0])


@pytest.mark.parametrize("name", list(FACTORIES))
def test_regularization_is_scalar(name: str) -> None:
    reg = make(name, input_dim=K).regularization()
    assert reg.shape == () and reg.item() > 0


def known_fixed_point_plrnn() -> tuple[PLRNN, torch.Tensor]:
    model = PLRNN(2).double()
    z_star = torch.tensor([1.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        model.A.copy_(torch.tensor([0.5, 0.5]))
        model.W.copy_(torch.tensor([[0.0, 0.2], [-0.3, 0.0]]))
        model.h.copy_(z_star - model.A * z_star - model.W @ torch.relu(z_star))
    return model, z_star


def test_fixed_points_exact_and_virtual_rejected() -> None:
    model, z_star = known_fixed_point_plrnn()
    found = fixed_points(model)
    assert any(np.allclose(p, z_star.numpy(), atol=1e-12) for p in found.points)
    for p in found.points:
        torch.testing.assert_close(model.step(torch.from_numpy(p)[None])[0], torch.from_numpy(p))
    # every region's solution, real or virtual, decides what must be returned
    n_virtual, real = 0, []
    for code in range(4):
        d = torch.tensor([code & 1, code >> 1 & 1], dtype=torch.bool)
        jac, c = model.region_map(d)
        z = torch.linalg.solve(torch.eye(2, dtype=torch.float64) - jac, c)
        if torch.equal(model.activation_pattern(z), d):
            real.append(z.detach().numpy())
        else:
            n_virtual += 1
    assert n_virtual > 0
    assert len(found.points) == len(real)
    eig = np.linalg.eigvals(np.diag([0.5, 0.5]) + np.array([[0.0, 0.0], [-0.3, 0.0]]))
    idx = int(np.argmin(np.abs(found.points - z_star.numpy()).sum(-1)))
    np.testing.assert_allclose(np.sort_complex(found.eigenvalues[idx]), np.sort_complex(eig))
    assert found.stable[idx]


def test_fixed_points_heuristic_finds_known_point() -> None:
    model, z_star = known_fixed_point_plrnn()
    found = fixed_points(model, max_regions=1, n_starts=20, random_state=0)
    assert any(np.allclose(p, z_star.numpy(), atol=1e-12) for p in found.points)
    assert len(found.points) == len(fixed_points(model).points)


def test_fixed_point_of_linear_alrnn() -> None:
    torch.manual_seed(3)
    model = ALRNN(3, 0).double()
    with torch.no_grad():
        model.h.normal_()
    with torch.no_grad():
        expected = torch.linalg.solve(
            torch.eye(3, dtype=torch.float64) - torch.diag(model.A) - model.W, model.h
        )
    found = fixed_points(model)
    assert found.points.shape == (1, 3)
    np.testing.assert_allclose(found.points[0], expected.numpy(), atol=1e-10)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: DendriticPLRNN(2, 2),
        lambda: DendriticPLRNN(2, 2, clipped=False),
        lambda: ShallowPLRNN(2, 3),
        lambda: ShallowPLRNN(2, 3, clipped=True),
        lambda: ALRNN(3, 2),
    ],
    ids=["dendritic", "dendritic_unclipped", "shallow", "shallow_clipped", "alrnn"],
)
def test_found_fixed_points_are_real(factory: Callable[[], LatentModel]) -> None:
    torch.manual_seed(0)
    model = factory().double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    found = fixed_points(model)
    assert found.points.shape[1] == model.latent_dim
    for p in torch.from_numpy(found.points):
        torch.testing.assert_close(model.step(p[None])[0], p)


def test_tent_map_fixed_points_and_two_cycle() -> None:
    # tent map: 2 z for z < 1/2, 2 - 2 z above
    tent = shallow_1d(a=2.0, w1=-4.0, w2=1.0, h2=-0.5)
    fps = fixed_points(tent)
    order = np.argsort(fps.points[:, 0])
    np.testing.assert_allclose(fps.points[order, 0], [0.0, 2.0 / 3.0], atol=1e-12)
    np.testing.assert_allclose(fps.eigenvalues[order, 0].real, [2.0, -2.0])
    two = cycles(tent, 2)
    assert two.orbits.shape == (1, 2, 1)
    np.testing.assert_allclose(np.sort(two.orbits[0, :, 0]), [0.4, 0.8], atol=1e-12)
    np.testing.assert_allclose(two.eigenvalues[0].real, [-4.0])
    assert not two.stable[0]
    heuristic = cycles(tent, 2, max_regions=1, n_starts=10, random_state=0)
    np.testing.assert_allclose(np.sort(heuristic.orbits[0, :, 0]), [0.4, 0.8], atol=1e-12)


def test_lyapunov_of_linear_model() -> None:
    model = ALRNN(3, 0).double()
    with torch.no_grad():
        model.A.copy_(torch.tensor([0.5, -0.9, 1.1], dtype=torch.float64))
        model.W.zero_()
    spectrum = lyapunov_spectrum(model, np.ones(3), T=50)
    np.testing.assert_allclose(spectrum, np.log([1.1, 0.9, 0.5]), atol=1e-10)
    assert max_lyapunov_exponent(model, np.ones(3), T=50) == pytest.approx(math.log(1.1), abs=1e-2)


def test_lyapunov_of_tent_maps() -> None:
    tent = shallow_1d(a=2.0, w1=-4.0, w2=1.0, h2=-0.5)
    assert max_lyapunov_exponent(tent, np.array([0.3]), T=200) == pytest.approx(math.log(2.0))
    # skew tent map with peak at p: exponent is the entropy of (p, 1 - p)
    p = 0.3
    skew = shallow_1d(a=1 / p, w1=-1 / (1 - p) - 1 / p, w2=1.0, h2=-p)
    lam = max_lyapunov_exponent(skew, np.array([0.1234]), T=3000, transient=10, renorm_every=5)
    assert lam == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p), abs=0.05)
    spectrum = lyapunov_spectrum(skew, np.array([0.1234]), T=3000, transient=10)
    assert spectrum[0] == pytest.approx(lam, abs=1e-9)


def test_affine_observation_inverse() -> None:
    torch.manual_seed(0)
    obs = AffineObservation(3, 3, bias=True).double()
    with torch.no_grad():
        obs.b.normal_()
    z = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(obs.invert(obs(z)), z)
    wide = AffineObservation(2, 5, bias=True).double()
    with torch.no_grad():
        wide.b.normal_()
    x = torch.randn(7, 2, dtype=torch.float64)
    z_hat = wide.invert(x)
    assert z_hat.shape == (7, 5)
    torch.testing.assert_close(z_hat @ wide.B.T, x - wide.b)
    assert obs(torch.randn(2, 6, 3, dtype=torch.float64)).shape == (2, 6, 3)


def test_affine_observation_condition_regularizer() -> None:
    obs = AffineObservation(3, 3).double()
    with torch.no_grad():
        obs.B.copy_(torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0])
    assert obs.regularization().item() == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        obs.B.copy_(torch.diag(torch.tensor([1.0, 2.0, 4.0])))
    assert obs.regularization().item() == pytest.approx(9.0)
    assert "b" not in dict(obs.named_parameters())


def test_identity_observation() -> None:
    obs = IdentityObservation(2, 5)
    z = torch.randn(3, 4, 5)
    torch.testing.assert_close(obs(z), z[..., :2])
    x = torch.randn(3, 2)
    z_hat = obs.invert(x)
    torch.testing.assert_close(z_hat[:, :2], x)
    assert torch.all(z_hat[:, 2:] == 0)
    torch.testing.assert_close(obs.init_state(x), torch.cat([x, x @ obs.L.T], dim=-1))
    assert obs.regularization().item() > 0
    square = IdentityObservation(3, 3)
    assert square.L is None and square.regularization().item() == 0


def test_bad_inputs_raise_value_errors() -> None:
    model = make("plrnn")
    with pytest.raises(ValueError, match="shape"):
        model.step(torch.randn(3, M + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="input_dim=0"):
        model.step(torch.randn(3, M, dtype=torch.float64), torch.randn(3, K, dtype=torch.float64))
    with pytest.raises(ValueError, match="T"):
        model(torch.randn(3, M, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="shape"):
        model.affine_map(torch.randn(2, M, dtype=torch.float64))
    driven = make("shallow", input_dim=K)
    with pytest.raises(ValueError, match="expects external inputs"):
        driven.step(torch.randn(3, M, dtype=torch.float64))
    with pytest.raises(ValueError, match="inputs must have shape"):
        driven(torch.randn(3, M, dtype=torch.float64), 4, torch.randn(3, 5, K, dtype=torch.float64))
    with pytest.raises(ValueError, match="n_nonlinear"):
        ALRNN(3, 4)
    with pytest.raises(ValueError, match="latent_dim"):
        PLRNN(0)
    with pytest.raises(ValueError, match="obs_dim"):
        IdentityObservation(4, 2)
    with pytest.raises(ValueError, match="shape"):
        AffineObservation(2, 3)(torch.randn(4, 2))
    with pytest.raises(ValueError, match="shape"):
        IdentityObservation(2, 3).invert(torch.randn(4, 3))
    with pytest.raises(ValueError, match="k"):
        cycles(model, 0)
    with pytest.raises(ValueError, match="LatentModel"):
        fixed_points(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="z0"):
        lyapunov_spectrum(model, np.zeros(M + 1), T=5)
