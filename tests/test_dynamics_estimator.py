"""DynamicsReconstructor (estimator contract, fit/score/dynamics_measures on Lorenz-63, model selection with
scikit-learn), the DSR data loaders and the example."""
from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from scripts import load_script
from timeseries.dynamics import DynamicsReconstructor, load_dsr, simulate_lorenz63
from timeseries.dynamics.data import DSR_ENV_VAR, DSR_FILES, default_dsr_root

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "timeseries" / "dynamics.py"
needs_dsr = pytest.mark.skipif(
    not all((default_dsr_root() / f).is_file() for files in DSR_FILES.values() for f in files.values()),
    reason=f"GTF paper data not available at {default_dsr_root()} (../shared/data/dsr is absent)",
)
TINY = dict(hidden_dim=10, epochs=2, batches_per_epoch=3, sequence_length=20, batch_size=4)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # the step loop is latency bound; two threads on a shared 2-core machine are many times slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lorenz() -> np.ndarray:
    x = simulate_lorenz63(6000, random_state=0)
    return (x - x.mean(0)) / x.std(0)


@pytest.fixture(scope="module")
def fitted(lorenz: np.ndarray) -> DynamicsReconstructor:
    """A short but real fit: 300 gradient steps, about 6 s."""
    before = torch.get_num_threads()  # module fixtures run before the autouse one_thread
    torch.set_num_threads(1)
    est = DynamicsReconstructor(
        hidden_dim=50, epochs=15, batches_per_epoch=20, sequence_length=50, lr_start=3e-3, alpha=0.1, random_state=0
    )
    est.fit(lorenz[:5000])
    torch.set_num_threads(before)
    return est


# ------------------------------------------------------------------ estimator contract


def test_get_params_and_clone_keep_the_constructor_arguments() -> None:
    est = DynamicsReconstructor(model="alrnn", latent_dim=6, alpha="adaptive", random_state=3)
    params = est.get_params()
    assert params["model"] == "alrnn" and params["latent_dim"] == 6 and params["alpha"] == "adaptive"
    assert clone(est).get_params() == params


def test_methods_before_fit_raise_not_fitted() -> None:
    est = DynamicsReconstructor()
    for call in (lambda: est.generate(10), lambda: est.predict(np.zeros((2, 3)), 5),
                 lambda: est.score(np.zeros((50, 3))), est.fixed_points, est.lyapunov_exponent):
        with pytest.raises(NotFittedError):
            call()


def test_fit_returns_self_with_fitted_attributes(lorenz: np.ndarray) -> None:
    est = DynamicsReconstructor(**TINY, random_state=0)
    assert est.fit(lorenz[:500]) is est
    assert est.n_features_in_ == 3 and est.n_inputs_ == 0
    assert est.n_epochs_ == 2 and est.n_steps_ == 6 and len(est.history_["loss"]) == 2
    assert est.model_.latent_dim == 3 and 0.0 <= est.alpha_ <= 1.0
    np.testing.assert_array_equal(est.x0_, lorenz[0])


def test_same_random_state_gives_identical_generation_and_pickles(lorenz: np.ndarray) -> None:
    est = DynamicsReconstructor(**TINY, alpha="adaptive", random_state=7).fit(lorenz[:500])
    other = clone(est).fit(lorenz[:500])
    gen = est.generate(200)
    assert gen.shape == (200, 3)
    np.testing.assert_array_equal(gen, other.generate(200))
    np.testing.assert_array_equal(gen, est.generate(200))  # no noise: generation is deterministic
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).generate(200), gen)
    np.testing.assert_allclose(gen[0], lorenz[0], rtol=1e-6)  # row 0 is the identity read-out of x0


def test_random_state_leaves_the_global_torch_rng_alone(lorenz: np.ndarray) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DynamicsReconstructor(**TINY, random_state=0).fit(lorenz[:500])
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("model", ["plrnn", "dendritic", "clipped_dendritic", "shallow", "alrnn", "linear"])
def test_every_model_fits_and_predicts(lorenz: np.ndarray, model: str) -> None:
    est = DynamicsReconstructor(model=model, n_bases=4, observation="affine", latent_dim=4, **TINY, random_state=0)
    pred = est.fit(lorenz[:300]).predict(lorenz[:5], 4)
    assert pred.shape == (5, 4, 3) and np.all(np.isfinite(pred))


def test_standardize_works_in_the_original_units(lorenz: np.ndarray) -> None:
    raw = 10.0 * lorenz[:500] + 5.0
    est = DynamicsReconstructor(**TINY, standardize=True, random_state=0).fit(raw)
    np.testing.assert_allclose(est.mean_, raw.mean(0))
    np.testing.assert_allclose(est.generate(3)[0], raw[0], rtol=1e-5)


def test_max_time_stops_after_the_first_epoch(lorenz: np.ndarray) -> None:
    est = DynamicsReconstructor(**{**TINY, "epochs": 50}, max_time=1e-6, random_state=0).fit(lorenz[:500])
    assert est.n_epochs_ == 1 and est.n_steps_ == TINY["batches_per_epoch"]


# ------------------------------------------------------------------ fit and score


def test_short_fit_lowers_the_loss_and_scores_finite(fitted: DynamicsReconstructor, lorenz: np.ndarray) -> None:
    loss = fitted.history_["loss"]
    assert loss[-1] < 0.9 * loss[0]
    scores = fitted.dynamics_measures(lorenz[5000:])
    assert set(scores) == {"D_stsp", "D_H", "PE"}
    assert all(math.isfinite(v) and v >= 0 for v in scores.values())
    assert scores["D_H"] <= 1.0


def test_score_follows_evaluation_jl(fitted: DynamicsReconstructor, lorenz: np.ndarray) -> None:
    from timeseries.dynamics.metrics import power_spectrum_error, prediction_error, state_space_divergence

    test = lorenz[5000:5400]
    gen = fitted.generate(500, x0=test[0])[100:]  # 1.25 T steps from the first test sample, 0.25 T dropped
    scores = fitted.dynamics_measures(test, n=5)
    assert scores["D_stsp"] == state_space_divergence(test, gen)
    assert scores["D_H"] == power_spectrum_error(test, gen)
    assert scores["PE"] == prediction_error(fitted.predict, test, 5)


def test_score_is_minus_d_stsp_and_dynamics_measures_keeps_the_dict(
    fitted: DynamicsReconstructor, lorenz: np.ndarray
) -> None:
    test = lorenz[5000:5400]
    value = fitted.score(test)
    assert type(value) is float
    assert value == -fitted.dynamics_measures(test)["D_stsp"]


def test_score_is_minus_infinity_when_no_generated_point_is_in_the_box(
    fitted: DynamicsReconstructor, lorenz: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    far = pickle.loads(pickle.dumps(fitted))
    monkeypatch.setattr(far, "generate", lambda T, x0=None, inputs=None: np.full((T, 3), 100.0))
    assert math.isnan(far.dynamics_measures(lorenz[:400])["D_stsp"])
    assert far.score(lorenz[:400]) == -math.inf


def test_grid_search_with_time_series_split_prefers_a_model_that_can_rotate() -> None:
    """Higher is better: on a noisy circle the elementwise linear model decays to a point (D_stsp 12.5), the
    shPLRNN learns the cycle (D_stsp 5.5-5.7), and the search picks it (about 6 s)."""
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

    t = np.arange(1500) * 2 * np.pi / 25
    noise = 0.05 * np.random.default_rng(0).standard_normal((1500, 2))
    x = np.sqrt(2) * np.stack([np.cos(t), np.sin(t)], axis=1) + noise
    est = DynamicsReconstructor(hidden_dim=20, epochs=50, batches_per_epoch=20, sequence_length=30, lr_start=1e-2,
                                alpha=0.3, random_state=0)
    search = GridSearchCV(est, {"model": ["linear", "clipped_shallow"]}, cv=TimeSeriesSplit(2, test_size=250),
                          refit=False).fit(x)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"model": "clipped_shallow"}
    assert np.all(np.isfinite(scores)) and scores[1] > scores[0] + 3


def test_cross_val_score_routes_external_inputs_to_fit_and_score(lorenz: np.ndarray) -> None:
    import sklearn
    from sklearn.model_selection import TimeSeriesSplit, cross_val_score

    s = np.sin(np.arange(600) / 10.0)[:, None]
    with sklearn.config_context(enable_metadata_routing=True):
        est = DynamicsReconstructor(**TINY, random_state=0).set_fit_request(inputs=True).set_score_request(inputs=True)
        scores = cross_val_score(est, lorenz[:600], params={"inputs": s}, cv=TimeSeriesSplit(2), error_score="raise")
    expected = [
        DynamicsReconstructor(**TINY, random_state=0).fit(lorenz[tr], inputs=s[tr]).score(lorenz[te], inputs=s[te])
        for tr, te in TimeSeriesSplit(2).split(lorenz[:600])
    ]
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores, expected)


def test_predict_matches_generate(fitted: DynamicsReconstructor, lorenz: np.ndarray) -> None:
    x0 = lorenz[100:103]
    pred = fitted.predict(x0, 6)
    for p in range(3):
        np.testing.assert_allclose(pred[p], fitted.generate(7, x0=x0[p])[1:], rtol=1e-5, atol=1e-6)


def test_diverging_generation_scores_inf_with_a_warning(lorenz: np.ndarray) -> None:
    est = DynamicsReconstructor(**TINY, random_state=0).fit(lorenz[:500])
    with torch.no_grad():
        est.model_.A.fill_(2.0)  # doubles the state every step: float32 overflows after ~130 steps
    with pytest.warns(RuntimeWarning, match="diverged"):
        scores = est.dynamics_measures(lorenz[:400], n=5)
    assert scores["D_stsp"] == math.inf and math.isnan(scores["D_H"]) and math.isfinite(scores["PE"])
    with pytest.warns(RuntimeWarning, match="diverged"):
        assert est.score(lorenz[:400]) == -math.inf


def test_analysis_helpers(fitted: DynamicsReconstructor) -> None:
    assert fitted.fixed_points(random_state=0).points.shape[1] == 3
    assert math.isfinite(fitted.lyapunov_exponent(T=200, transient=50))
    assert fitted.lyapunov_exponent(T=200, transient=50, spectrum=True).shape == (3,)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.full((300, 3), np.nan), "NaN or inf"),
        (np.r_[np.zeros((299, 3)), [[np.inf, 0, 0]]], "NaN or inf"),
        (np.zeros((20, 3)), "fewer than sequence_length \\+ 1 = 21"),
        (np.zeros(300), "2-D"),
    ],
)
def test_bad_training_data(X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DynamicsReconstructor(**TINY).fit(X)


def test_bad_parameters() -> None:
    x = np.random.default_rng(0).standard_normal((300, 3))
    with pytest.raises(ValueError, match="model must be one of"):
        DynamicsReconstructor(model="lstm").fit(x)
    with pytest.raises(ValueError, match="observation must be one of"):
        DynamicsReconstructor(observation="mlp").fit(x)
    with pytest.raises(ValueError, match="latent_dim >= obs_dim"):
        DynamicsReconstructor(latent_dim=2, **TINY).fit(x)


def test_wrong_dimensions_at_generate_predict_and_score(lorenz: np.ndarray) -> None:
    est = DynamicsReconstructor(**TINY, random_state=0).fit(lorenz[:500])
    with pytest.raises(ValueError, match="x0 must have shape \\(N,\\) with N = 3"):
        est.generate(10, x0=np.zeros(4))
    with pytest.raises(ValueError, match="x0 must have shape \\(P, N\\) with N = 3"):
        est.predict(np.zeros((2, 5)), 3)
    with pytest.raises(ValueError, match="X must have shape \\(T, N\\) with N = 3"):
        est.score(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="more than"):
        est.dynamics_measures(lorenz[:10], n=20)
    with pytest.raises(ValueError, match="NaN or inf"):
        est.score(np.full((100, 3), np.nan))
    with pytest.raises(ValueError, match="T must be >= 1"):
        est.generate(0)
    with pytest.raises(ValueError, match="without external inputs"):
        est.generate(10, inputs=np.zeros((10, 1)))


def test_external_inputs_are_required_once_fitted_with_them(lorenz: np.ndarray) -> None:
    s = np.sin(np.arange(500) / 10.0)[:, None]
    est = DynamicsReconstructor(**TINY, random_state=0).fit(lorenz[:500], inputs=s)
    assert est.n_inputs_ == 1 and est.generate(50, inputs=s[:50]).shape == (50, 3)
    with pytest.raises(ValueError, match="inputs of shape"):
        est.generate(50)
    scores = est.dynamics_measures(lorenz[:200], n=5, inputs=s[:200])
    assert math.isfinite(scores["PE"])


# ------------------------------------------------------------------ data


def test_simulate_lorenz63_shape_and_seed() -> None:
    a, b = simulate_lorenz63(300, random_state=1), simulate_lorenz63(300, random_state=1)
    assert a.shape == (300, 3)
    np.testing.assert_array_equal(a, b)
    assert 5 < a[:, 2].mean() < 40  # on the attractor (z around rho - 1), not at the start point
    with pytest.raises(ValueError, match="T must be"):
        simulate_lorenz63(0)


def test_load_dsr_names_the_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "lorenz63_test.npy").replace("\\", "\\\\")):
        load_dsr("lorenz63", "test", root=tmp_path)
    monkeypatch.setenv(DSR_ENV_VAR, str(tmp_path))
    assert default_dsr_root() == tmp_path
    with pytest.raises(ValueError, match="name must be one of"):
        load_dsr("rossler")
    with pytest.raises(ValueError, match="split must be"):
        load_dsr("ecg", "val")


@needs_dsr
@pytest.mark.parametrize(("name", "dim"), [("lorenz63", 3), ("ecg", 5)])
def test_load_dsr_reads_the_shared_files(name: str, dim: int) -> None:
    for split in ("train", "test"):
        data = load_dsr(name, split)
        assert data.shape == (100_000, dim) and np.all(np.isfinite(data[:1000]))
        np.testing.assert_allclose(data.std(0), 1.0, atol=0.2)  # the paper's files are z-scored


# ------------------------------------------------------------------ example


def load_example() -> ModuleType:
    return load_script(EXAMPLE, "dynamics_example")


def test_example_quick_writes_its_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = load_example().main(["--quick", "--epochs", "2", "--batches", "5", "--out", str(tmp_path)])
    assert [row["model"] for row in rows] == ["clipped shPLRNN + aGTF", "train data (floor)"]
    assert rows[0]["steps"] == 10 and math.isfinite(rows[0]["D_stsp"]) and math.isfinite(rows[1]["D_H"])
    assert (tmp_path / "attractor.png").stat().st_size > 0 and (tmp_path / "spectra.png").stat().st_size > 0
    assert "| clipped shPLRNN + aGTF |" in capsys.readouterr().out
