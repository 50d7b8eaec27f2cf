"""AutoTimes: the forecaster contract, learning a sine, the rollouts, channel independence, timestamps,
pretrained frozen backbones, in-context prompts and input errors. Tiny models keep the file well under a minute."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from timeseries.autotimes import AutoTimesForecaster, calendar_features

PERIOD = 16
TINY = dict(token_len=4, context_len=32, d_model=16, depth=1, mlp_hidden=32, batch_size=32, lr=3e-3)


def sine(n: int, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(n) / PERIOD + phase)


def tiny(**kwargs) -> AutoTimesForecaster:
    params = {**TINY, "epochs": 2, "max_windows_per_epoch": 64, "random_state": 0, **kwargs}
    return AutoTimesForecaster(**params)


@pytest.fixture(scope="module")
def sine_model() -> AutoTimesForecaster:
    """Fitted on 376 steps of a clean sine; the last 24 steps of a 400-step sine are held out."""
    return tiny(epochs=8, max_windows_per_epoch=256).fit(sine(400)[:-24])


def test_fit_returns_self_and_records_training(sine_model: AutoTimesForecaster) -> None:
    model = tiny()
    with pytest.raises(NotFittedError):
        model.predict(4)
    assert model.fit(sine(60)) is model
    assert len(model.history_) == 2 and all(np.isfinite(model.history_))
    assert model.n_params_ == model.n_trainable_params_ == sum(p.numel() for p in model.net_.parameters())
    assert sine_model.history_[-1] < sine_model.history_[0] / 10


def test_clone_and_get_params() -> None:
    model = tiny(tokenizer="linear", rollout="sliding", timestamp_features="calendar")
    params = clone(model).get_params()
    assert params == model.get_params()
    assert params["tokenizer"] == "linear" and params["missing"] == "raise" and params["pretrained"] is None


def test_pickle_round_trip(sine_model: AutoTimesForecaster) -> None:
    restored = pickle.loads(pickle.dumps(sine_model))
    np.testing.assert_array_equal(restored.predict(12), sine_model.predict(12))


def test_random_state_repeatable() -> None:
    y = sine(80)
    a, b, c = tiny().fit(y), tiny().fit(y), tiny(random_state=1).fit(y)
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.predict(8), b.predict(8))
    assert not np.allclose(a.predict(8), c.predict(8))


def test_datetime_series_in_series_out_and_lists() -> None:
    index = pd.date_range("2021-03-01", periods=60, freq="h")
    y = pd.Series(sine(60), index=index, name="load")
    model = tiny().fit(y)
    forecast = model.predict(np.array([1, 3, 6]))
    assert isinstance(forecast, pd.Series) and forecast.name == "load"
    assert list(forecast.index) == [index[-1] + pd.Timedelta(hours=h) for h in (1, 3, 6)]
    both = tiny().fit([sine(60), 2.0 + sine(50, phase=1.0)])
    forecasts = both.predict(5)
    assert isinstance(forecasts, list) and [f.shape for f in forecasts] == [(5,), (5,)]


def test_learns_a_sine_wave(sine_model: AutoTimesForecaster) -> None:
    y = sine(400)
    truth = y[-24:]
    forecast = sine_model.predict(24)
    mse = np.mean((forecast - truth) ** 2)
    naive = np.mean((y[-25] - truth) ** 2)
    assert mse < 0.05 * y.var() and mse < 0.05 * naive


def test_recurrent_rollout_equals_reencoding_the_growing_sequence(sine_model: AutoTimesForecaster) -> None:
    context = sine(37, phase=0.3)  # 9 whole segments, the window takes the last 8
    horizon = 40  # 10 segments: the sequence grows past the 8-token window
    forecast = sine_model.predict(horizon, y=context)
    crop = torch.tensor(context[-32:], dtype=torch.float32)
    mean, std = crop.mean(), torch.sqrt(crop.var(unbiased=False) + 1e-5)
    tokens = ((crop - mean) / std).reshape(1, 8, 4)
    with torch.no_grad():
        for _ in range(10):
            tokens = torch.cat([tokens, sine_model.net_(tokens)[:, -1:]], dim=1)
    expected = (tokens[0, 8:].flatten() * std + mean).double().numpy()
    np.testing.assert_allclose(forecast, expected, atol=1e-4)


def test_sliding_equals_recurrent_until_the_window_slides(sine_model: AutoTimesForecaster) -> None:
    # rollout only matters when forecasting, so the same fitted network can forecast both ways.
    sliding = copy.deepcopy(sine_model).set_params(rollout="sliding")
    context = sine(8, phase=0.7)  # 2 tokens; the 7th prediction is made from 2 + 6 = 8 tokens, the full window
    recurrent_forecast = sine_model.predict(40, y=context)
    sliding_forecast = sliding.predict(40, y=context)
    np.testing.assert_allclose(sliding_forecast[:28], recurrent_forecast[:28], atol=1e-5)
    # From the 8th segment on the sliding window drops the oldest tokens, the recurrence keeps them.
    assert not np.allclose(sliding_forecast[28:], recurrent_forecast[28:], atol=1e-5)


def test_channel_independence() -> None:
    frame = pd.DataFrame({"a": sine(60), "b": 5.0 + 3.0 * sine(60, phase=2.0)})
    model = tiny().fit(frame)
    forecast = model.predict(6)
    assert isinstance(forecast, pd.DataFrame) and list(forecast.columns) == ["a", "b"] and forecast.shape == (6, 2)
    changed = frame.assign(b=np.random.default_rng(0).normal(size=60))
    np.testing.assert_array_equal(model.predict(6, y=changed)["a"], forecast["a"])
    assert not np.allclose(model.predict(6, y=changed)["b"], forecast["b"])


def test_timestamp_features_change_the_output() -> None:
    index = pd.date_range("2021-03-01", periods=60, freq="h")
    y = pd.Series(sine(60), index=index)
    model = tiny(timestamp_features="calendar").fit(y)
    assert model.n_time_features_ == 8 and calendar_features(index).shape == (60, 8)
    shifted = pd.Series(y.to_numpy(), index=index + pd.Timedelta(hours=7))
    assert not np.allclose(model.predict(8).to_numpy(), model.predict(8, y=shifted).to_numpy())
    hourly = tiny(timestamp_features=lambda ix: np.asarray(ix.hour, dtype=float)[:, None] / 24).fit(y)
    assert hourly.n_time_features_ == 1 and hourly.predict(5).shape == (5,)
    with pytest.raises(ValueError, match="DatetimeIndex"):
        model.predict(4, y=sine(40))
    with pytest.raises(ValueError, match="DatetimeIndex"):
        tiny(timestamp_features="calendar").fit(sine(60))


def test_pretrained_backbone_stays_frozen(sine_model: AutoTimesForecaster) -> None:
    before = {k: v.clone() for k, v in sine_model.net_.backbone.state_dict().items()}
    model = tiny(pretrained=sine_model, token_len=8, epochs=3).fit(2.0 + sine(80, phase=1.0))
    for key, value in model.net_.backbone.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert model.n_trainable_params_ < model.n_params_
    assert model.n_trainable_params_ == sum(
        p.numel() for name, p in model.net_.named_parameters() if not name.startswith("backbone.")
    )
    assert model.net_.backbone is not sine_model.net_.backbone
    from_module = tiny(pretrained=sine_model.net_.backbone).fit(sine(60))
    assert from_module.n_trainable_params_ == sum(
        p.numel() for name, p in from_module.net_.named_parameters() if not name.startswith("backbone.")
    )
    with pytest.raises(NotFittedError):
        tiny(pretrained=tiny()).fit(sine(60))


def test_in_context_prompt(sine_model: AutoTimesForecaster) -> None:
    context = sine(16, phase=0.4)
    plain = sine_model.predict(8, y=context)
    prompted = sine_model.predict_in_context([sine(34, phase=1.0), sine(20)], 8, y=context)
    assert prompted.shape == (8,) and not np.allclose(prompted, plain)
    with pytest.raises(ValueError, match="prompt"):
        sine_model.predict_in_context(sine(3), 8)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="fewer than the 36"):
        tiny().fit(sine(35))
    with pytest.raises(ValueError, match="multiple of token_len"):
        tiny(context_len=30).fit(sine(60))
    with pytest.raises(ValueError, match="tokenizer"):
        tiny(tokenizer="conv").fit(sine(60))
    model = tiny().fit(sine(60))
    with pytest.raises(ValueError, match="3 time steps, fewer than the 4 this model needs"):
        model.predict(4, y=sine(3))
    with pytest.raises(ValueError, match="channels"):
        model.predict(4, y=np.zeros((20, 2)))
    with pytest.raises(ValueError, match="exogenous"):
        model.predict(4, X=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="exogenous"):
        tiny().fit(sine(60), X=np.zeros((60, 1)))
    with pytest.raises(ValueError, match="NaN"):
        tiny().fit(np.where(np.arange(60) == 5, np.nan, sine(60)))


def test_local_hugging_face_backbone(tmp_path) -> None:
    """A tiny randomly initialized GPT-2 written to a temporary directory serves as the frozen backbone."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=64, vocab_size=8)
    torch.manual_seed(0)
    transformers.GPT2Model(config).save_pretrained(tmp_path)
    model = tiny(pretrained=str(tmp_path), rollout="sliding").fit(sine(120))
    backbone = model.net_.backbone
    assert backbone.dim == 16 and not any(p.requires_grad for p in backbone.parameters())
    reloaded = transformers.GPT2Model.from_pretrained(tmp_path)
    for name, value in reloaded.state_dict().items():
        assert torch.equal(backbone.model.state_dict()[name], value), name  # frozen: training left it unchanged
    forecast = model.predict(12)
    assert forecast.shape == (12,) and np.isfinite(forecast).all()
    assert model.n_trainable_params_ < model.n_params_
    with pytest.raises(ValueError, match="rollout='sliding'"):
        tiny(pretrained=str(tmp_path)).fit(sine(120))
    with pytest.raises(FileNotFoundError, match="no Hugging Face model directory"):
        tiny(pretrained=str(tmp_path / "missing"), rollout="sliding").fit(sine(120))


def test_early_stopping_keeps_the_best_epoch_on_the_held_out_end() -> None:
    rng = np.random.default_rng(1)
    y = sine(300) + 0.3 * rng.normal(size=300)
    # A large constant learning rate makes the validation loss bounce, so the best epoch is not the last one.
    model = tiny(epochs=12, lr=3e-2, lr_schedule="constant", validation_fraction=0.2, n_iter_no_change=4).fit(y)
    history = model.validation_history_
    assert len(model.history_) == len(history) <= 12
    assert model.best_epoch_ == int(np.argmin(history))
    assert len(history) == 12 or len(history) == model.best_epoch_ + 5
    # Recompute the validation loss from the public API: windows whose next segment starts at or after the
    # cut (300 - 60 = 240), each forecast one segment ahead, errors in units of the training part's std.
    context, token = TINY["context_len"], TINY["token_len"]
    starts = np.arange(240 - context, 300 - context - token + 1)
    forecasts = np.stack(model.predict(token, y=[y[s:s + context] for s in starts]))
    targets = np.stack([y[s + context:s + context + token] for s in starts])
    scale = np.std(y[:240])
    assert np.mean(((forecasts - targets) / scale) ** 2) == pytest.approx(history[model.best_epoch_], rel=1e-4)


def test_validation_split_errors() -> None:
    with pytest.raises(ValueError, match="fewer than the 45"):
        tiny(validation_fraction=0.2).fit(sine(44))
    assert tiny(validation_fraction=0.2, epochs=1).fit(sine(45)).validation_history_
    for bad in (0.0, 1.0, -0.1, "half"):
        with pytest.raises(ValueError, match="validation_fraction"):
            tiny(validation_fraction=bad).fit(sine(100))
    with pytest.raises(ValueError, match="n_iter_no_change"):
        tiny(validation_fraction=0.2, n_iter_no_change=0).fit(sine(100))
    with pytest.raises(ValueError, match="lr_schedule"):
        tiny(lr_schedule="step").fit(sine(100))
    with pytest.raises(ValueError, match="dropout"):
        tiny(dropout=1.0).fit(sine(100))
    # Dropout acts in training only: forecasts stay deterministic.
    noisy = tiny(dropout=0.5, epochs=1).fit(sine(100))
    np.testing.assert_array_equal(noisy.predict(8), noisy.predict(8))
    assert not hasattr(tiny(epochs=1).fit(sine(60)), "validation_history_")
