"""The shared training loop: reproducibility, resume after an interruption, early stopping, divergence."""

from __future__ import annotations

import pytest
import torch

from coursepkg import train


def regression_problem(seed: int, n: int = 300, d: int = 5):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)
    w = torch.randn(d, 1, generator=generator)
    y = x @ w + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def mse(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


def noisy_mse(model, x, y):
    # Uses the global RNG inside the loss (as a VAE or a denoising AE does): resume must restore it too.
    return torch.nn.functional.mse_loss(model(x + 0.05 * torch.randn_like(x)), y)


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_seed_same_weights(seed):
    data = regression_problem(seed)
    a, b = make_model(seed), make_model(seed)
    train.fit(a, noisy_mse, data, epochs=3, batch_size=32, seed=seed, progress=False, device="cpu")
    train.fit(b, noisy_mse, data, epochs=3, batch_size=32, seed=seed, progress=False, device="cpu")
    for p, q in zip(weights(a), weights(b), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("seed", [0, 1])
def test_resumed_run_matches_an_uninterrupted_run(tmp_path, seed):
    data = regression_problem(seed)
    settings = dict(batch_size=32, seed=seed, progress=False, device="cpu", val_data=data)

    uninterrupted = make_model(seed)
    full_history = train.fit(uninterrupted, noisy_mse, data, epochs=5, **settings)

    class Disconnect(Exception):
        pass

    def cut_after_epoch_2(epoch, history):
        if epoch == 2:
            raise Disconnect  # Colab disconnects after the checkpoint of epoch 2 is written

    checkpoint = tmp_path / "run.pt"
    interrupted = make_model(seed)
    with pytest.raises(Disconnect):
        train.fit(
            interrupted, noisy_mse, data, epochs=5, checkpoint=checkpoint, callbacks=[cut_after_epoch_2], **settings
        )
    assert checkpoint.exists() and not list(tmp_path.glob("*.part"))

    resumed = make_model(seed + 100)  # a fresh process would start from other weights
    torch.manual_seed(12345)  # and with another global RNG state
    history = train.fit(resumed, noisy_mse, data, epochs=5, checkpoint=checkpoint, **settings)
    for p, q in zip(weights(uninterrupted), weights(resumed), strict=True):
        assert torch.equal(p, q)
    assert history.train_loss == full_history.train_loss
    assert history.val_loss == full_history.val_loss


def test_fit_lowers_the_loss_and_records_history():
    data = regression_problem(0)
    model = make_model(0)
    history = train.fit(model, mse, data, epochs=20, batch_size=50, lr=1e-2, progress=False, val_data=data)
    assert history.epochs == 20 and len(history.val_loss) == 20 and len(history.epoch_seconds) == 20
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    assert history.stopped == "completed"
    # The reported epoch loss is the example-weighted mean over batches of the last epoch's updates; the
    # evaluation afterwards (no dropout, final weights) must be of the same order.
    assert train.evaluate(model, mse, data) < 2 * history.train_loss[-1] + 0.05


def test_epoch_loss_is_the_example_weighted_mean():
    x, y = regression_problem(1, n=10)
    model = torch.nn.Linear(5, 1)
    # With lr tiny the weights barely move, so the epoch mean equals the loss of the initial model.
    before = train.evaluate(model, mse, (x, y))
    history = train.fit(model, mse, (x, y), epochs=1, batch_size=3, lr=1e-12, progress=False, device="cpu")
    assert history.train_loss[0] == pytest.approx(before, rel=1e-5)


def test_early_stopping_restores_the_best_weights():
    x, y = regression_problem(2, n=40)
    val = regression_problem(3, n=40)
    model = torch.nn.Sequential(torch.nn.Linear(5, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))
    history = train.fit(
        model, mse, (x, y), val_data=val, epochs=300, batch_size=40, lr=1e-2, patience=5, progress=False
    )
    assert history.stopped.startswith("early stopping")
    assert history.epochs < 300
    assert train.evaluate(model, mse, val) == pytest.approx(min(history.val_loss), rel=1e-6)
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)


def test_nan_loss_stops_with_advice_about_the_learning_rate():
    data = regression_problem(0)
    model = torch.nn.Linear(5, 1)
    optimizer = lambda params: torch.optim.SGD(params, lr=1e6)  # noqa: E731 -- a deliberately absurd step
    with pytest.raises(train.TrainingDiverged, match="smaller") as raised:
        train.fit(model, mse, data, epochs=50, lr=1e6, optimizer=optimizer, progress=False)
    assert "learning rate" in str(raised.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1, "batch_size": 0}, "batch_size"),
        ({"epochs": 1, "lr": -1.0}, "lr"),
        ({"epochs": 1, "patience": 3}, "val_data"),
        ({"epochs": 1, "precision": "float16"}, "precision"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.fit(torch.nn.Linear(5, 1), mse, regression_problem(0), progress=False, **kwargs)


@pytest.mark.parametrize("name", ["epochs", "batch_size", "patience"])
def test_a_bool_is_not_a_count(name):
    kwargs = {"epochs": 1, name: True, "val_data": regression_problem(1)}
    with pytest.raises(TypeError, match=f"{name} must be an integer, got bool"):
        train.fit(torch.nn.Linear(5, 1), mse, regression_problem(0), progress=False, **kwargs)


def test_mismatched_data_is_named():
    x, y = regression_problem(0)
    with pytest.raises(ValueError, match="same first dimension"):
        train.fit(torch.nn.Linear(5, 1), mse, (x, y[:-1]), epochs=1, progress=False)
    with pytest.raises(TypeError, match="tensor"):
        train.fit(torch.nn.Linear(5, 1), mse, [x.numpy()], epochs=1, progress=False)


@pytest.mark.parametrize("seed, batch_size", [(0, 32), (1, 50), (2, 300)])
def test_fit_matches_a_plain_loop_step_for_step(seed, batch_size):
    """The fast path (resident data, index batches, losses summed on the device) computes exactly what a plain
    loop computes: the same batches in the same order, the same updates, the same epoch losses."""
    x, y = regression_problem(seed)
    fast = make_model(seed)
    plain = make_model(seed)
    history = train.fit(fast, noisy_mse, (x, y), epochs=3, batch_size=batch_size, seed=seed, progress=False)

    torch.manual_seed(seed)  # fit seeds the global generator with its seed (used by dropout and the noise)
    optimizer = train.default_optimizer(plain.parameters(), 1e-3, torch.device("cpu"))
    shuffler = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(3):
        order = torch.randperm(len(x), generator=shuffler)
        total = 0.0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            loss = noisy_mse(plain, x[index], y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        losses.append(total / len(x))
    assert history.train_loss == pytest.approx(losses, rel=1e-12)
    for p, q in zip(weights(fast), weights(plain), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_optimizer_is_adam(seed):
    """The fused Adam that fit uses by default takes the steps of PyTorch's reference (loop) Adam."""
    x, y = regression_problem(seed)
    fused, loop = make_model(seed), make_model(seed)
    fused.eval(), loop.eval()  # no dropout: the same gradients for both
    fused_optimizer = train.default_optimizer(fused.parameters(), 1e-2, torch.device("cpu"))
    loop_optimizer = torch.optim.Adam(loop.parameters(), lr=1e-2, foreach=False)
    for _ in range(50):
        for model, optimizer in ((fused, fused_optimizer), (loop, loop_optimizer)):
            optimizer.zero_grad()
            mse(model, x, y).backward()
            optimizer.step()
    for p, q in zip(weights(fused), weights(loop), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not torch.equal(weights(fused)[0], weights(make_model(seed))[0])  # it did move


@pytest.mark.parametrize("seed", [0, 1])
def test_bfloat16_autocast_trains_like_float32(seed):
    """Autocast changes the forward pass's rounding only: parameters stay float32 and the run's losses stay
    within bfloat16's precision (8 bits, about 0.4%, compounded over the steps) of the exact run."""
    x, y = regression_problem(seed)
    exact, mixed = make_model(seed), make_model(seed)
    exact_history = train.fit(exact, mse, (x, y), epochs=5, batch_size=32, seed=seed, progress=False)
    mixed_history = train.fit(
        mixed, mse, (x, y), epochs=5, batch_size=32, seed=seed, progress=False, precision="bfloat16"
    )
    assert all(p.dtype == torch.float32 for p in mixed.parameters())
    assert mixed_history.train_loss == pytest.approx(exact_history.train_loss, rel=0.05)
    assert mixed_history.train_loss != exact_history.train_loss  # autocast did run in bfloat16
