"""coursepkg.autoencoders against independent references: torch.distributions, torch.autograd Jacobians in
float64, closed forms written differently, sampling statistics; and two short trainings on MNIST."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, kl_divergence

from coursepkg import autoencoders as ae
from coursepkg import data, runtime, train

SEEDS = range(5)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------ MLPAutoencoder


def test_mlp_autoencoder_shapes_and_layers_are_unchanged():
    model = ae.MLPAutoencoder((784, 1000, 500, 250, 30))
    x = torch.rand(3, 784)
    assert model.encode(x).shape == (3, 30) and model(x).shape == (3, 784)
    assert [type(layer).__name__ for layer in model.encoder] == ["Linear", "ReLU"] * 3 + ["Linear", "Identity"]
    assert isinstance(model.decoder[-1], torch.nn.Sigmoid)
    with pytest.raises(ValueError, match="dims"):
        ae.MLPAutoencoder((784,))
    with pytest.raises(ValueError, match="activation"):
        ae.MLPAutoencoder((4, 3, 2), activation="swish")


def test_k_sparse_autoencoder_codes_have_k_active_units():
    torch.manual_seed(0)
    model = ae.KSparseAutoencoder((20, 12), k=3)
    z = model.encode(torch.randn(6, 20))
    assert ((z != 0).sum(dim=1) == 3).all()
    assert torch.equal(model(torch.ones(2, 20)), model.decode(model.encode(torch.ones(2, 20))))
    with pytest.raises(ValueError, match=r"k \(the number of code units kept\) must be <= 12, got 13"):
        ae.KSparseAutoencoder((20, 12), k=13)
    with pytest.raises(TypeError, match="k .* must be an integer, got bool"):
        ae.KSparseAutoencoder((20, 12), k=True)
    with pytest.raises(TypeError, match=r"dims\[1\] must be an integer"):
        ae.MLPAutoencoder((20, True))


# ------------------------------------------------------------------------------------- sparsity penalties


@pytest.mark.parametrize("seed", SEEDS)
def test_bernoulli_kl_matches_torch_distributions(seed, float64_device):
    rng = np.random.default_rng(seed)
    rho, rho_hat = rng.uniform(0.01, 0.99, size=7), torch.tensor(rng.uniform(0.001, 0.999, size=7))
    expected = kl_divergence(Bernoulli(probs=torch.tensor(rho)), Bernoulli(probs=rho_hat))
    rho_on, rho_hat_on = torch.tensor(rho).to(float64_device), rho_hat.to(float64_device)
    torch.testing.assert_close(ae.bernoulli_kl(rho_on, rho_hat_on).cpu(), expected, rtol=1e-10, atol=1e-12)
    scalar = float(rho[0])
    expected = kl_divergence(Bernoulli(probs=torch.full((7,), scalar, dtype=torch.float64)), Bernoulli(probs=rho_hat))
    torch.testing.assert_close(ae.bernoulli_kl(scalar, rho_hat_on).cpu(), expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_bernoulli_kl_is_non_negative_and_zero_only_at_equality(p, q):
    kl = lambda a, b: float(ae.bernoulli_kl(a, torch.tensor(b, dtype=torch.float64)))  # noqa: E731
    assert kl(p, q) >= 0
    assert kl(p, p) == 0
    if abs(p - q) > 1e-3:
        assert kl(p, q) > 0


def test_kl_is_not_symmetric_and_breaks_the_triangle_inequality():
    kl = lambda a, b: float(ae.bernoulli_kl(a, torch.tensor(b, dtype=torch.float64)))  # noqa: E731
    assert kl(0.05, 0.5) != pytest.approx(kl(0.5, 0.05), rel=0.1)
    assert kl(0.1, 0.9) > kl(0.1, 0.5) + kl(0.5, 0.9)


def test_bernoulli_kl_boundaries_and_errors():
    values = ae.bernoulli_kl(0.3, torch.tensor([0.0, 0.3, 1.0]))
    assert math.isinf(values[0]) and values[1] == 0 and math.isinf(values[2])
    for rho in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"rho must lie in \(0, 1\)"):
            ae.bernoulli_kl(rho, torch.tensor([0.5]))
    with pytest.raises(ValueError, match="rho_hat"):
        ae.bernoulli_kl(0.5, torch.tensor([1.2]))


@pytest.mark.parametrize("seed", SEEDS)
def test_kl_sparsity_penalty_sums_the_kl_of_mean_activations(seed, float64_device):
    rng = np.random.default_rng(seed)
    h = torch.tensor(rng.uniform(0, 1, size=(int(rng.integers(2, 50)), int(rng.integers(1, 20)))))
    rho = float(rng.uniform(0.01, 0.5))
    rho_hat = h.sum(dim=0) / h.shape[0]
    expected = kl_divergence(Bernoulli(probs=torch.full_like(rho_hat, rho)), Bernoulli(probs=rho_hat)).sum()
    got = ae.kl_sparsity_penalty(h.to(float64_device), rho).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_kl_sparsity_penalty_is_zero_exactly_when_mean_activation_is_rho():
    h = torch.zeros(8, 5, dtype=torch.float64)
    h[torch.arange(5), torch.arange(5)] = 1.0  # every unit is on for exactly one of 8 examples: rho_hat = 1/8
    assert ae.kl_sparsity_penalty(h, 0.125).item() == 0.0
    h.requires_grad_(True)
    ae.kl_sparsity_penalty(h, 0.125).backward()
    assert torch.allclose(h.grad, torch.zeros_like(h), atol=1e-12), "the penalty is minimal at rho_hat = rho"
    assert ae.kl_sparsity_penalty(h.detach(), 0.1).item() > 0
    assert ae.kl_sparsity_penalty(h.detach(), 0.2).item() > 0


def test_kl_sparsity_penalty_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ae.kl_sparsity_penalty(torch.full((3, 2), 1.5), 0.1)
    with pytest.raises(ValueError, match="rho"):
        ae.kl_sparsity_penalty(torch.full((3, 2), 0.5), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        ae.kl_sparsity_penalty(torch.full((3,), 0.5), 0.1)
    dead = torch.zeros(4, 3)  # units that never fire give a large, finite penalty
    assert torch.isfinite(ae.kl_sparsity_penalty(dead, 0.05))


@pytest.mark.parametrize("seed", SEEDS)
def test_l1_activity_penalty(seed):
    h = torch.randn(6, 9, generator=_generator(seed), dtype=torch.float64)
    expected = sum(abs(float(v)) for v in h.flatten()) / 6
    assert ae.l1_activity_penalty(h).item() == pytest.approx(expected, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 15), st.data())
def test_top_k_sparse_keeps_the_k_largest(n, m, drawn):
    k = drawn.draw(st.integers(1, m))
    seed = drawn.draw(st.integers(0, 10_000))
    h = torch.randn(n, m, generator=_generator(seed), dtype=torch.float64).requires_grad_(True)
    out = ae.top_k_sparse(h, k)
    for row_in, row_out in zip(h.detach(), out.detach(), strict=True):
        threshold = sorted(row_in.tolist(), reverse=True)[k - 1]
        kept = row_in >= threshold
        assert int(kept.sum()) == k
        assert torch.equal(row_out[kept], row_in[kept]) and (row_out[~kept] == 0).all()
    out.sum().backward()
    assert torch.equal(h.grad, (out.detach() != 0).double()), "gradients flow to the kept entries only"


def test_top_k_sparse_errors():
    h = torch.randn(2, 5)
    for k in (0, 6, -1):
        with pytest.raises(ValueError, match=r"k \(the number of code units kept\) must be (>= 1|<= 5)"):
            ae.top_k_sparse(h, k)
    with pytest.raises(TypeError, match="k .* must be an integer"):
        ae.top_k_sparse(h, 2.0)
    with pytest.raises(ValueError, match="2-D"):
        ae.top_k_sparse(torch.randn(5), 2)


# ------------------------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_masking_noise_statistics(p):
    x = torch.rand(300, 400, generator=_generator(1)) + 0.1  # no zeros in x: a zero in the output was dropped
    out = ae.masking_noise(x, p, generator=_generator(2))
    dropped = out == 0
    assert torch.equal(out[~dropped], x[~dropped]), "surviving entries are unchanged"
    assert abs(dropped.double().mean().item() - p) <= 5 * math.sqrt(p * (1 - p) / x.numel()) + 1e-12
    if p > 0:  # independent entries: per-row fractions vary like a binomial over 400 entries
        assert dropped.double().mean(dim=1).var().item() < 2 * p * (1 - p) / 400
    assert torch.equal(out, ae.masking_noise(x, p, generator=_generator(2))), "same generator seed, same mask"
    assert out.dtype == x.dtype and out.shape == x.shape


def test_masking_noise_errors():
    for p in (1.0, -0.1, 2):
        with pytest.raises(
            ValueError, match=r"p \(the probability of masking an entry\) must (lie in \[0, 1\]|be < 1)"
        ):
            ae.masking_noise(torch.rand(3), p)
    with pytest.raises(TypeError, match="generator"):
        ae.masking_noise(torch.rand(3), 0.5, generator=0)
    with pytest.raises(TypeError, match="tensor"):
        ae.masking_noise(np.ones(3), 0.5)


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.7])
def test_gaussian_noise_statistics(sigma):
    x = torch.rand(200, 500, generator=_generator(3), dtype=torch.float64)
    out = ae.gaussian_noise(x, sigma, generator=_generator(4))
    noise = out - x
    n = noise.numel()
    assert abs(noise.mean().item()) <= 5 * sigma / math.sqrt(n) + 1e-15
    assert abs(noise.std().item() - sigma) <= 5 * sigma / math.sqrt(2 * n) + 1e-15
    if sigma > 0:  # independent entries: neighbouring entries are uncorrelated
        correlation = torch.corrcoef(torch.stack([noise[:, :-1].flatten(), noise[:, 1:].flatten()]))[0, 1]
        assert abs(correlation.item()) < 5 / math.sqrt(n)
    assert torch.equal(out, ae.gaussian_noise(x, sigma, generator=_generator(4)))
    with pytest.raises(ValueError, match="sigma"):
        ae.gaussian_noise(x, -0.1)


# ----------------------------------------------------------------------------------- contractive penalty


def _jacobian_squared_norms(function, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.autograd.functional.jacobian(function, row).pow(2).sum() for row in x])


@pytest.mark.parametrize("seed", SEEDS)
def test_contractive_penalty_matches_autograd_jacobians(seed, float64_device):
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    x = torch.randn(4, 7, dtype=torch.float64)
    expected = _jacobian_squared_norms(encoder, x)
    encoder, x = encoder.to(float64_device), x.to(float64_device)
    torch.testing.assert_close(ae.contractive_penalty(encoder, x, reduction="none").cpu(), expected)
    torch.testing.assert_close(ae.contractive_penalty(encoder, x).cpu(), expected.mean())


def test_contractive_penalty_is_differentiable_in_the_parameters():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Sigmoid()).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    ae.contractive_penalty(encoder, x).backward()
    got = encoder[0].weight.grad.clone()
    encoder.zero_grad()
    # reference: the Jacobian built with create_graph=True, differentiated by plain autograd
    total = (
        sum(torch.autograd.functional.jacobian(encoder, row, create_graph=True).pow(2).sum() for row in x) / x.shape[0]
    )
    total.backward()
    torch.testing.assert_close(got, encoder[0].weight.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_closed_form_equals_the_jacobian_norm(seed, float64_device):
    torch.manual_seed(seed)
    d, m, n = 9, 6, 5
    layer = torch.nn.Linear(d, m).double()
    x = torch.randn(n, d, dtype=torch.float64)
    expected = _jacobian_squared_norms(lambda v: torch.sigmoid(layer(v)), x).mean()
    layer, x = layer.to(float64_device), x.to(float64_device)
    h = torch.sigmoid(layer(x))
    torch.testing.assert_close(ae.sigmoid_contractive_penalty(layer.weight, h).cpu(), expected)
    encoder = torch.nn.Sequential(layer, torch.nn.Sigmoid())
    torch.testing.assert_close(ae.contractive_penalty(encoder, x).cpu(), expected)


def test_contractive_errors():
    with pytest.raises(ValueError, match="W of shape"):
        ae.sigmoid_contractive_penalty(torch.randn(4, 3), torch.rand(2, 5))
    with pytest.raises(ValueError, match="reduction"):
        ae.contractive_penalty(torch.nn.Linear(3, 2), torch.randn(2, 3), reduction="sum")
    with pytest.raises(TypeError, match="callable"):
        ae.contractive_penalty("encoder", torch.randn(2, 3))


# ------------------------------------------------------------------------------------ losses and scoring


def test_reconstruction_error_and_psnr():
    x = torch.rand(4, 2, 3, generator=_generator(5), dtype=torch.float64)
    x_hat = torch.rand(4, 2, 3, generator=_generator(6), dtype=torch.float64)
    squared = [float(((a - b) ** 2).sum()) for a, b in zip(x, x_hat, strict=True)]
    assert ae.reconstruction_error(x, x_hat).tolist() == pytest.approx(squared, rel=1e-12)
    expected_psnr = [10 * math.log10(6 / s) for s in squared]  # 6 pixels, peak value 1
    assert ae.psnr(x, x_hat).tolist() == pytest.approx(expected_psnr, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        ae.reconstruction_error(x, x_hat[:3])


def test_autoencoder_loss_adds_the_weighted_penalty():
    torch.manual_seed(0)
    model = ae.MLPAutoencoder((10, 4), code_activation="sigmoid").double()
    x = torch.rand(8, 10, dtype=torch.float64)
    h = model.encode(x)
    base = ((x - model(x)) ** 2).sum(dim=1).mean()
    checks = {
        "none": base,
        "l1": base + 0.3 * h.abs().sum(dim=1).mean(),
        "kl": base
        + 0.3 * kl_divergence(Bernoulli(probs=torch.full((4,), 0.1, dtype=x.dtype)), Bernoulli(h.mean(0))).sum(),
        "contractive": base + 0.3 * _jacobian_squared_norms(model.encoder, x).mean(),
        "sigmoid_contractive": base + 0.3 * _jacobian_squared_norms(model.encoder, x).mean(),
    }
    for penalty, expected in checks.items():
        torch.testing.assert_close(ae.autoencoder_loss(penalty, 0.3, rho=0.1)(model, x), expected)
    noisy = ae.autoencoder_loss(corruption=lambda batch: torch.zeros_like(batch))(model, x)
    torch.testing.assert_close(noisy, ((x - model(torch.zeros_like(x))) ** 2).sum(dim=1).mean())
    with pytest.raises(ValueError, match="penalty must be one of"):
        ae.autoencoder_loss("l2")
    with pytest.raises(ValueError, match="weight"):
        ae.autoencoder_loss("l1", -1.0)
    with pytest.raises(ValueError, match="one-layer sigmoid encoder"):
        ae.autoencoder_loss("sigmoid_contractive", 1.0)(ae.MLPAutoencoder((10, 6, 4)), x.float())


def test_anomaly_scores_codes_and_reconstruct_run_in_eval_mode_and_restore_it():
    torch.manual_seed(0)
    model = ae.MLPAutoencoder((12, 3))
    x = torch.rand(10, 12)
    model.train()
    scores = ae.anomaly_scores(model, x, batch_size=3)
    assert model.training
    torch.testing.assert_close(scores, ((model(x) - x) ** 2).sum(dim=1).detach())
    torch.testing.assert_close(ae.codes(model, x, batch_size=4), model.encode(x).detach())
    torch.testing.assert_close(ae.reconstruct(model, x, batch_size=7), model(x).detach())


# ------------------------------------------------------------------------------ short trainings on MNIST


@pytest.fixture(scope="module")
def mnist():
    train_images = data.load_mnist("train").images[:2000]
    test_images = data.load_mnist("test").images[:1000]
    return train_images, test_images


@pytest.mark.slow
def test_trained_sparse_autoencoder_mean_activation_is_near_rho(mnist):
    train_images, test_images = mnist
    rho = 0.1
    runtime.seed_everything(0)
    model = ae.MLPAutoencoder((784, 64), code_activation="sigmoid")
    loss = ae.autoencoder_loss("kl", 20.0, rho=rho)
    train.fit(model, loss, train_images, epochs=10, batch_size=64, lr=1e-2, device="cpu", progress=False)
    mean_activation = ae.codes(model, test_images).mean(dim=0)
    assert abs(mean_activation.mean().item() - rho) < 0.04, mean_activation.mean().item()
    assert (mean_activation - rho).abs().median().item() < 0.05


@pytest.mark.slow
def test_denoising_autoencoder_beats_the_noisy_input_and_a_plain_autoencoder(mnist):
    train_images, test_images = mnist
    models = {}
    for name, corruption in (("plain", None), ("denoising", partial(ae.gaussian_noise, sigma=0.5))):
        runtime.seed_everything(0)
        model = ae.MLPAutoencoder((784, 128), output_activation="identity")
        loss = ae.autoencoder_loss(corruption=corruption)
        train.fit(model, loss, train_images, epochs=10, batch_size=64, lr=3e-3, device="cpu", progress=False)
        models[name] = model
    noisy = ae.gaussian_noise(test_images, 0.5, generator=_generator(0))
    noisy_error = ae.reconstruction_error(test_images, noisy).mean().item()
    errors = {
        name: ae.reconstruction_error(test_images, ae.reconstruct(model, noisy)).mean().item()
        for name, model in models.items()
    }
    assert errors["denoising"] < 0.5 * errors["plain"], errors
    assert errors["denoising"] < 0.2 * noisy_error, (errors, noisy_error)


def test_one_layer_builder_for_every_fully_connected_model():
    from coursepkg import layers, vae

    stack = layers.mlp((6, 4, 2), "tanh", "sigmoid")
    assert [type(m).__name__ for m in stack] == ["Linear", "Tanh", "Linear", "Sigmoid"]
    assert [m.out_features for m in stack if isinstance(m, torch.nn.Linear)] == [4, 2]
    with pytest.raises(ValueError, match="code_activation must be one of"):
        ae.MLPAutoencoder((4, 2), code_activation="swish")
    model = vae.VAE(6, (5, 4), 2)
    assert [type(m).__name__ for m in model.decoder] == ["Linear", "ReLU"] * 2 + ["Linear", "Identity"]
    assert "_activation" not in vars(vae) and "autoencoders" not in vars(vae)


# ------------------------------------------------------------------------------ unsupervised pre-training


@pytest.fixture(scope="module")
def small_mnist():
    images, labels = data.load_mnist("train")
    return images[:600], labels[:600]


def test_pretrain_stack_is_greedy_and_each_layer_beats_its_initialisation(small_mnist):
    """Each layer's autoencoder, trained on the codes of the layers below, reconstructs them better than freshly
    initialised autoencoders of its shape; training layer 2 leaves layer 1 exactly as a one-layer stack trained
    alone leaves it; the stacked encoder is laid out as layers.mlp and is made of the autoencoders' encoders."""
    x = small_mnist[0]
    stack = ae.pretrain_stack(x, (784, 32, 8), activation="sigmoid", epochs=4, lr=3e-3, seed=1)
    assert [type(m).__name__ for m in stack.encoder] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert [tuple(m.weight.shape) for m in stack.encoder if isinstance(m, torch.nn.Linear)] == [(32, 784), (8, 32)]
    assert stack.encoder[0] is stack.autoencoders[0].encoder[0] and stack.encoder[2] is stack.autoencoders[1].encoder[0]
    assert len(stack.histories) == 2 and all(h.epochs == 4 for h in stack.histories)
    assert stack.autoencoders[0].decoder[-1].__class__ is torch.nn.Sigmoid  # first_output
    assert stack.autoencoders[1].decoder[-1].__class__ is torch.nn.Identity  # unbounded codes below

    inputs = [x, ae.codes(stack.autoencoders[0], x)]
    loss = ae.autoencoder_loss()
    for depth, (layer_ae, layer_inputs) in enumerate(zip(stack.autoencoders, inputs, strict=True)):
        trained_loss = train.evaluate(layer_ae, loss, layer_inputs)
        for seed in range(3):
            torch.manual_seed(seed)
            fresh = ae.MLPAutoencoder(
                layer_ae.dims, code_activation="sigmoid", output_activation="sigmoid" if depth == 0 else "identity"
            )
            assert trained_loss < 0.8 * train.evaluate(fresh, loss, layer_inputs), (depth, seed)
    with torch.inference_mode():
        torch.testing.assert_close(stack.encoder(x), stack.autoencoders[1].encode(stack.autoencoders[0].encode(x)))

    alone = ae.pretrain_stack(x, (784, 32), activation="sigmoid", epochs=4, lr=3e-3, seed=1)
    torch.testing.assert_close(alone.encoder[0].weight, stack.encoder[0].weight, rtol=0, atol=0)


def test_pretrain_stack_rejects_bad_input(small_mnist):
    with pytest.raises(ValueError, match="at least two"):
        ae.pretrain_stack(small_mnist[0], (784,))
    with pytest.raises(ValueError, match="shape"):
        ae.pretrain_stack(small_mnist[0][:, :100], (784, 16))


def test_classifier_starts_from_a_copy_of_the_encoder_and_fine_tuning_leaves_it_untouched(small_mnist):
    x, y = small_mnist
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 16))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    network = ae.classifier(encoder, 10)
    assert isinstance(network[-1], torch.nn.Linear) and network[-1].weight.shape == (10, 16)
    torch.testing.assert_close(network[0][0].weight, encoder[0].weight, rtol=0, atol=0)  # starts equal
    assert network[0][0].weight is not encoder[0].weight  # a copy
    assert network(x[:5]).shape == (5, 10)
    train.fit(network, ae.classification_loss, (x[:100], y[:100]), epochs=60, batch_size=100, lr=3e-3, progress=False)
    assert ae.accuracy(network, x[:100], y[:100]) > 0.95  # it fits its few labels
    assert not torch.equal(network[0][0].weight.detach().cpu(), encoder[0].weight)  # every layer is fine-tuned
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="no nn.Linear"):
        ae.classifier(torch.nn.ReLU(), 10)


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_and_classification_loss_match_scikit_learn_and_a_closed_form(seed):
    from sklearn.metrics import accuracy_score, log_loss

    generator = _generator(seed)
    model = torch.nn.Linear(6, 4).double()
    x = torch.randn(50, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (50,), generator=generator)
    with torch.no_grad():
        logits = model(x).numpy()
    expected = accuracy_score(y.numpy(), logits.argmax(axis=1))
    assert ae.accuracy(model, x, y, batch_size=7) == pytest.approx(expected, abs=1e-15)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = ae.classification_loss(model, x, y).item()
    assert loss == pytest.approx(log_loss(y.numpy(), probabilities, labels=range(4)), rel=1e-10)
    with pytest.raises(ValueError, match="labels"):
        ae.accuracy(model, x, y[:10])
