"""The shared training loop: reproducibility, resume after an interruption, early stopping, divergence."""

from __future__ import annotations

import re

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

    def cut_after_epoch_2(state):
        if state.epoch == 2:
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
def test_fit_matches_a_plain_loop_step_for_step(seed, batch_size, device):
    """The fast path (resident data, index batches, losses summed on the device) computes exactly what a plain
    loop on the same device computes: the same batches in the same order, the same updates, the same losses."""
    x, y = regression_problem(seed)
    fast = make_model(seed)
    plain = make_model(seed).to(device)
    history = train.fit(
        fast, noisy_mse, (x, y), epochs=3, batch_size=batch_size, seed=seed, progress=False, device=device
    )

    x, y = x.to(device), y.to(device)
    torch.manual_seed(seed)  # fit seeds the global generator with its seed (used by dropout and the noise)
    optimizer = train.default_optimizer(plain.parameters(), 1e-3, torch.device(device))
    shuffler = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(3):
        order = torch.randperm(len(x), generator=shuffler).to(device)
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


# --------------------------------------------------------------------------------- the parts of fit


def test_train_epoch_is_one_pass_of_the_plain_loop():
    x, y = regression_problem(4, n=70)
    model, plain = make_model(4), make_model(4)
    model.eval(), plain.eval()  # train_epoch switches to training mode: dropout draws from the global RNG
    order = torch.randperm(70, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(3)
    mean = train.train_epoch(model, mse, (x, y), opt, order, 32)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    plain.train()
    torch.manual_seed(3)
    total = 0.0
    for start in range(0, 70, 32):
        index = order[start : start + 32]
        loss = mse(plain, x[index], y[index])
        plain_opt.zero_grad()
        loss.backward()
        plain_opt.step()
        total += loss.item() * len(index)
    assert mean == pytest.approx(total / 70, rel=1e-12)
    for p, q in zip(weights(model), weights(plain), strict=True):
        assert torch.equal(p, q)


def test_early_stopping_counts_epochs_without_improvement_and_keeps_the_best_weights():
    model = torch.nn.Linear(2, 1)
    history = train.History()
    stopping = train.EarlyStopping(patience=2)
    decisions = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 1.0, 1.5, 1.2, 0.9], start=1):
        with torch.no_grad():
            model.weight.fill_(loss)  # the weights of each epoch are recognisable by its loss
        decisions.append(stopping.update(loss, model, epoch, history))
    assert decisions == [False, False, False, False, False, True, False]
    assert history.best_epoch == 7 and stopping.best_loss == 0.9
    tracking_only = train.EarlyStopping(None)
    assert not any(tracking_only.update(v, model, i, history) for i, v in enumerate([1.0, 2.0, 3.0, 4.0], 1))
    stopping = train.EarlyStopping(patience=1)
    for epoch, loss in enumerate([2.0, 1.0, 1.5], start=1):
        with torch.no_grad():
            model.weight.fill_(loss)
        stopping.update(loss, model, epoch, history)
    stopping.restore(model)
    assert torch.equal(model.weight, torch.full((1, 2), 1.0))


def test_scheduler_is_stepped_once_per_epoch_and_callbacks_see_the_state():
    data = regression_problem(0)
    seen = []

    def record(state):
        assert isinstance(state.optimizer, torch.optim.Adam) and state.history.epochs == state.epoch
        seen.append((state.epoch, state.optimizer.param_groups[0]["lr"], state.model is model))

    model = make_model(0)
    train.fit(
        model,
        mse,
        data,
        epochs=4,
        lr=1e-2,
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 0.5**e),
        callbacks=[record],
        progress=False,
        device="cpu",
    )
    assert [epoch for epoch, _, _ in seen] == [1, 2, 3, 4] and all(same for _, _, same in seen)
    assert [lr for _, lr, _ in seen] == pytest.approx([1e-2 * 0.5**e for e in (1, 2, 3, 4)], rel=1e-12)


# ------------------------------------------------------------------- checkpoints resume their own run only


class Disconnect(Exception):
    pass


def _interrupted_run(checkpoint, data, *, after: int, **settings):
    def cut(state):
        if state.epoch == after:
            raise Disconnect

    with pytest.raises(Disconnect):
        train.fit(make_model(0), noisy_mse, data, epochs=4, checkpoint=checkpoint, callbacks=[cut], **settings)


SETTINGS = dict(batch_size=32, lr=1e-3, seed=0, progress=False, device="cpu")


def test_checkpoint_stores_a_fingerprint_and_loads_with_weights_only(tmp_path):
    data = regression_problem(0)
    checkpoint = tmp_path / "run.pt"
    _interrupted_run(checkpoint, data, after=1, **SETTINGS)
    state = torch.load(checkpoint, weights_only=True)  # tensors and basic types only
    fingerprint = state["fingerprint"]
    assert fingerprint["batch size"] == 32 and fingerprint["seed"] == 0 and fingerprint["examples"] == 300
    assert fingerprint["optimizer"] == "Adam" and fingerprint["optimizer settings"][0]["lr"] == 1e-3
    assert fingerprint["parameters"]["0.weight"] == [16, 5] and fingerprint["model"].endswith("Sequential")
    assert (
        fingerprint["data sha256"]
        != train.fingerprint(
            make_model(0), torch.optim.Adam(make_model(0).parameters()), regression_problem(1), batch_size=32, seed=0
        )["data sha256"]
    )


@pytest.mark.parametrize(
    "change, named",
    [
        ({"lr": 2e-3}, "optimizer settings[0].lr"),
        ({"batch_size": 50}, "batch size"),
        ({"seed": 1}, "seed"),
        ({"data": 1}, "data sha256"),
    ],
)
def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, change, named):
    checkpoint = tmp_path / "run.pt"
    _interrupted_run(checkpoint, regression_problem(0), after=2, **SETTINGS)
    settings = dict(SETTINGS)
    data = regression_problem(change.pop("data")) if "data" in change else regression_problem(0)
    settings.update(change)
    fresh = make_model(0)
    expected_history = train.fit(fresh, noisy_mse, data, epochs=4, **settings)  # the changed run, from scratch
    resumed = make_model(0)
    with pytest.warns(UserWarning, match="not resumed.*" + re.escape(named)):
        history = train.fit(resumed, noisy_mse, data, epochs=4, checkpoint=checkpoint, **settings)
    assert history.epochs == 4 and history.train_loss == expected_history.train_loss
    for p, q in zip(weights(fresh), weights(resumed), strict=True):
        assert torch.equal(p, q)
    assert torch.load(checkpoint, weights_only=True)["history"]["train_loss"] == history.train_loss  # replaced


def test_an_unreadable_checkpoint_is_replaced_with_a_warning(tmp_path):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="cannot be read"):
        history = train.fit(make_model(0), mse, regression_problem(0), epochs=2, checkpoint=checkpoint, **SETTINGS)
    assert history.epochs == 2 and "fingerprint" in torch.load(checkpoint, weights_only=True)


def test_resume_with_a_scheduler_is_bit_identical(tmp_path):
    data = regression_problem(0)
    schedule = dict(scheduler=lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5))
    uninterrupted = make_model(0)
    full = train.fit(uninterrupted, noisy_mse, data, epochs=4, **schedule, **SETTINGS)
    checkpoint = tmp_path / "run.pt"
    _interrupted_run(checkpoint, data, after=2, **schedule, **SETTINGS)
    resumed = make_model(5)
    history = train.fit(resumed, noisy_mse, data, epochs=4, checkpoint=checkpoint, **schedule, **SETTINGS)
    assert history.train_loss == full.train_loss
    for p, q in zip(weights(uninterrupted), weights(resumed), strict=True):
        assert torch.equal(p, q)


def test_inference_runs_batch_by_batch_in_evaluation_mode_and_restores_the_mode():
    x, y = regression_problem(5, n=37)
    model = make_model(5)  # with dropout: evaluation mode makes the outputs deterministic
    parts = train.inference(model, model, x, batch_size=10)
    assert [size for _, size in parts] == [10, 10, 10, 7] and model.training
    model.eval()
    torch.testing.assert_close(torch.cat([out for out, _ in parts]), model(x), rtol=1e-6, atol=1e-7)
    model.train()
    expected = torch.nn.functional.mse_loss(model.eval()(x), y).item()
    model.train()
    assert train.evaluate(model, mse, (x, y), batch_size=8) == pytest.approx(expected, rel=1e-6)

    def fail(batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train.inference(fail, model, x)
    assert model.training, "the training mode is restored after an error"
