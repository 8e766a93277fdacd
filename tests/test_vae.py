"""Tests of coursepkg.vae against torch.distributions, closed forms and statistics of samples."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal, kl_divergence

from coursepkg import data, train, vae

SEEDS = [0, 1, 2, 3]


def _random_spd(generator: torch.Generator, d: int, batch=()) -> torch.Tensor:
    a = torch.randn(*batch, d, d, generator=generator, dtype=torch.float64)
    return a @ a.mT + 0.3 * torch.eye(d, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- KLs


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_kl_matches_torch_distributions(seed, float64_device):
    g = torch.Generator().manual_seed(seed)
    n, d = 1 + seed, 3 + 2 * seed
    mu = 2 * torch.randn(n, d, generator=g, dtype=torch.float64)
    logvar = 3 * torch.rand(n, d, generator=g, dtype=torch.float64) - 2
    want = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    got = vae.gaussian_kl(mu.to(float64_device), logvar.to(float64_device)).cpu()
    assert got.shape == (n,)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_gaussian_kl_is_zero_only_at_the_prior():
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    assert torch.equal(vae.gaussian_kl(zeros, zeros), torch.zeros(2, dtype=torch.float64))
    assert (vae.gaussian_kl(zeros + 0.1, zeros) > 0).all()
    with pytest.raises(ValueError, match="mu and logvar"):
        vae.gaussian_kl(zeros, zeros[:, :3])


@pytest.mark.parametrize("seed", SEEDS)
def test_kl_mvn_matches_torch_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    d = 1 + seed
    mu0, mu1 = torch.randn(2, d, generator=g, dtype=torch.float64)
    cov0, cov1 = _random_spd(g, d), _random_spd(g, d)
    want = kl_divergence(MultivariateNormal(mu0, cov0), MultivariateNormal(mu1, cov1))
    torch.testing.assert_close(vae.kl_mvn(mu0, cov0, mu1, cov1), want, rtol=1e-9, atol=1e-10)


def test_kl_mvn_batched_and_special_cases():
    g = torch.Generator().manual_seed(5)
    mu0, mu1 = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    cov0, cov1 = _random_spd(g, 3, (6,)), _random_spd(g, 3, (6,))
    want = kl_divergence(MultivariateNormal(mu0, cov0), MultivariateNormal(mu1, cov1))
    torch.testing.assert_close(vae.kl_mvn(mu0, cov0, mu1, cov1), want, rtol=1e-9, atol=1e-10)
    # KL(p || p) = 0, and the diagonal case against N(0, I) is gaussian_kl.
    torch.testing.assert_close(vae.kl_mvn(mu0, cov0, mu0, cov0), torch.zeros(6, dtype=torch.float64))
    logvar = torch.randn(6, 3, generator=g, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    diagonal = torch.diag_embed(torch.exp(logvar))
    torch.testing.assert_close(
        vae.kl_mvn(mu0, diagonal, torch.zeros_like(mu0), eye.expand(6, 3, 3)), vae.gaussian_kl(mu0, logvar)
    )


def test_kl_mvn_broadcasts_shared_covariances():
    g = torch.Generator().manual_seed(6)
    mu0, mu1 = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    cov0, cov1 = _random_spd(g, 3), _random_spd(g, 3)
    want = kl_divergence(MultivariateNormal(mu0, cov0), MultivariateNormal(mu1, cov1))
    # Batched means with one shared covariance, and one mean with a batch of (equal) covariances.
    torch.testing.assert_close(vae.kl_mvn(mu0, cov0, mu1, cov1), want, rtol=1e-9, atol=1e-10)
    repeated = vae.kl_mvn(mu0[0], cov0.expand(5, 3, 3), mu1[0], cov1)
    torch.testing.assert_close(repeated, want[0].expand(5), rtol=1e-9, atol=1e-10)


def test_kl_mvn_rejects_bad_covariances():
    mu = torch.zeros(2, dtype=torch.float64)
    good = torch.eye(2, dtype=torch.float64)
    indefinite = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    singular = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    asymmetric = torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="cov0 must be positive definite"):
        vae.kl_mvn(mu, indefinite, mu, good)
    with pytest.raises(ValueError, match="cov1 must be positive definite"):
        vae.kl_mvn(mu, good, mu, singular)
    with pytest.raises(ValueError, match="cov1 must be symmetric"):
        vae.kl_mvn(mu, good, mu, asymmetric)
    with pytest.raises(ValueError, match="same d"):
        vae.kl_mvn(mu, good, torch.zeros(3, dtype=torch.float64), good)


# ---------------------------------------------------------------------------------- reparameterize


def test_reparameterize_has_the_right_mean_and_variance():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    mu = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    logvar = torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)
    z = vae.reparameterize(mu.expand(n, 3), logvar.expand(n, 3), generator=g)
    sigma = torch.exp(0.5 * logvar)
    # The sample mean is within 5 standard errors, the sample variance within 5 of its standard errors.
    assert ((z.mean(0) - mu).abs() < 5 * sigma / math.sqrt(n)).all()
    assert ((z.var(0) / sigma**2 - 1).abs() < 5 * math.sqrt(2 / n)).all()
    # The standardized noise is uncorrelated across coordinates.
    eps = (z - mu) / sigma
    correlation = torch.corrcoef(eps.T)
    assert (correlation - torch.eye(3, dtype=torch.float64)).abs().max() < 5 / math.sqrt(n)


def test_reparameterize_passes_gradients_and_follows_the_generator():
    mu = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    z = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    grad_mu, grad_logvar = torch.autograd.grad(z.pow(2).sum(), (mu, logvar))
    # d(z^2)/dmu = 2 z; d(z^2)/dlogvar = 2 z * sigma * eps / 2 = z (z - mu).
    torch.testing.assert_close(grad_mu, 2 * z.detach())
    torch.testing.assert_close(grad_logvar, (z * (z - mu)).detach())
    again = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, again)
    with pytest.raises(ValueError, match="same shape"):
        vae.reparameterize(mu, logvar[:, :2])


def test_reparameterized_gradient_of_an_expectation_is_unbiased():
    # d/dmu E[z^2] = 2 mu and d/dlogvar E[z^2] = d/dlogvar (mu^2 + exp(logvar)) = exp(logvar).
    n = 100_000
    mu = torch.full((n, 1), 0.7, dtype=torch.float64, requires_grad=True)
    logvar = torch.full((n, 1), -0.4, dtype=torch.float64, requires_grad=True)
    z = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    grad_mu, grad_logvar = torch.autograd.grad(z.pow(2).mean(), (mu, logvar))
    assert abs(grad_mu.sum().item() - 1.4) < 0.02
    assert abs(grad_logvar.sum().item() - math.exp(-0.4)) < 0.02


@pytest.mark.parametrize("estimator", ["reparameterization", "score"])
def test_gradient_estimators_are_unbiased(estimator):
    mu = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    logvar = torch.tensor([0.0, -1.0, 0.5], dtype=torch.float64)
    samples = vae.gradient_estimates(
        lambda z: z.pow(2).sum(1), mu, logvar, 200_000, estimator, generator=torch.Generator().manual_seed(0)
    )
    standard_error = samples.std(0) / math.sqrt(samples.shape[0])
    assert ((samples.mean(0) - 2 * mu).abs() < 5 * standard_error).all()


def test_score_function_estimator_has_the_larger_variance():
    mu, logvar = torch.zeros(10, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)
    variances = {
        name: vae.gradient_estimates(
            lambda z: (z - 1).pow(2).sum(1), mu, logvar, 20_000, name, generator=torch.Generator().manual_seed(0)
        )
        .var(0)
        .mean()
        for name in ("reparameterization", "score")
    }
    assert variances["score"] > 10 * variances["reparameterization"]
    with pytest.raises(ValueError, match="estimator"):
        vae.gradient_estimates(lambda z: z.sum(1), mu, logvar, 2, "pathwise")


# ------------------------------------------------------------------------------------------ the model


def test_vae_shapes_and_architecture():
    model = vae.VAE(784, (200, 200), 50, "bernoulli")
    widths = [layer.out_features for layer in model.encoder if isinstance(layer, torch.nn.Linear)]
    assert widths == [200, 200]
    assert [layer.out_features for layer in model.decoder if isinstance(layer, torch.nn.Linear)] == [200, 200, 784]
    x = torch.rand(7, 784)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (7, 50)
    decoded, mu2, _ = model(x)
    assert decoded.shape == (7, 784) and torch.equal(mu, mu2)
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 784) and 0 <= samples.min() and samples.max() <= 1
    binary = model.sample(5, generator=torch.Generator().manual_seed(0), draw=True)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert vae.VAE(784, 400, 20).hidden == (400,)


def test_vae_rejects_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        vae.VAE(784, 400, 20, "poisson")
    with pytest.raises(ValueError, match="hidden"):
        vae.VAE(784, (400, 0), 20)
    with pytest.raises(ValueError, match="z_dim"):
        vae.VAE(784, 400, 0)
    with pytest.raises(ValueError, match="sigma"):
        vae.VAE(784, 400, 20, "bernoulli", sigma=0.1)
    with pytest.raises(ValueError, match="activation"):
        vae.VAE(784, 400, 20, activation="swish")
    model = vae.VAE(10, 8, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 10\)"):
        model.encode(torch.rand(3, 11))
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(torch.rand(3, 3))
    with pytest.raises(ValueError, match=r"n \(the number of samples\) must be >= 1"):
        model.sample(0)
    with pytest.raises(TypeError, match="hidden.* must be an integer, got bool"):
        vae.VAE(784, (400, True), 20)


def test_log_likelihoods_match_torch_distributions():
    torch.manual_seed(0)
    x = torch.rand(6, 12).bernoulli()
    bernoulli = vae.VAE(12, 8, 3, "bernoulli")
    logits = 5 * torch.randn(6, 12)
    torch.testing.assert_close(bernoulli.log_likelihood(x, logits), Bernoulli(logits=logits).log_prob(x).sum(-1))

    fixed = vae.VAE(12, 8, 3, "gaussian", sigma=0.3)
    learned = vae.VAE(12, 8, 3, "gaussian")
    assert "log_sigma" in dict(fixed.named_buffers()) and "log_sigma" in dict(learned.named_parameters())
    mean = torch.randn(6, 12)
    torch.testing.assert_close(fixed.log_likelihood(x, mean), Normal(mean, 0.3).log_prob(x).sum(-1))
    with torch.no_grad():
        learned.log_sigma.fill_(math.log(2.0))
    torch.testing.assert_close(learned.log_likelihood(x, mean), Normal(mean, 2.0).log_prob(x).sum(-1))
    # Broadcasting over k samples: decoded (k, N, D) against x (N, D).
    stacked = torch.stack([logits, -logits])
    assert bernoulli.log_likelihood(x, stacked).shape == (2, 6)


def test_elbo_is_the_bernoulli_elbo_at_the_same_sample(float64_device):
    torch.manual_seed(1)
    model = vae.VAE(20, 16, 4).double().to(float64_device)
    x = torch.rand(8, 20, dtype=torch.float64).bernoulli().to(float64_device)
    got = vae.elbo(model, x, generator=torch.Generator().manual_seed(7))
    mu, logvar = model.encode(x)
    z = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, vae.bernoulli_elbo(x, model.decode(z), mu, logvar))
    reconstruction, kl = vae.elbo_terms(model, x, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, reconstruction - kl)
    assert (kl >= 0).all()


def test_elbo_loss_binarizes_and_ignores_labels():
    torch.manual_seed(2)
    model = vae.VAE(20, 16, 4)
    x = torch.rand(8, 20)
    labels = torch.arange(8)
    torch.manual_seed(3)
    loss = vae.elbo_loss(model, x, labels)
    torch.manual_seed(3)
    binary = data.binarize(x)
    expected = -vae.elbo(model, binary).mean()
    torch.testing.assert_close(loss, expected)
    torch.manual_seed(4)
    no_binarization = vae.elbo_loss(model, x, binarize=False)
    torch.manual_seed(4)
    torch.testing.assert_close(no_binarization, -vae.elbo(model, x).mean())


# ------------------------------------------------------------------------------- importance weighting


def test_iwae_log_weight_is_log_joint_minus_log_q():
    # With k = 1 the bound is the single log-weight log p(x | z) + log p(z) - log q(z | x) at z ~ q(z | x).
    torch.manual_seed(3)
    model = vae.VAE(20, 16, 4).double()
    x = torch.rand(8, 20, dtype=torch.float64).bernoulli()
    with torch.no_grad():
        one = vae.iwae_bound(model, x, 1, generator=torch.Generator().manual_seed(11))
        mu, logvar = model.encode(x)
        z = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(11))
        q = Normal(mu, torch.exp(0.5 * logvar))
        log_joint = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(one, log_joint - q.log_prob(z).sum(-1))


def test_iwae_streaming_matches_the_log_weights_and_chunking_is_invisible(float64_device):
    torch.manual_seed(4)
    model = vae.VAE(20, 16, 4).double().to(float64_device)
    x = torch.rand(5, 20, dtype=torch.float64).bernoulli().to(float64_device)
    with torch.no_grad():
        weights = vae.log_importance_weights(model, x, 37, generator=torch.Generator().manual_seed(0), max_elements=300)
        bound = vae.iwae_bound(model, x, 37, generator=torch.Generator().manual_seed(0), max_elements=300)
    assert weights.shape == (5, 37)
    assert bound.device.type == float64_device.type
    torch.testing.assert_close(bound, torch.logsumexp(weights, 1) - math.log(37))
    torch.testing.assert_close(vae.iwae_from_log_weights(weights), bound)


def test_iwae_from_log_weights_is_stable():
    log_weights = torch.tensor([[-1000.0, -1001.0], [-5.0, -5.0]], dtype=torch.float64)
    want = torch.tensor([-1000 + math.log((1 + math.exp(-1)) / 2), -5.0], dtype=torch.float64)
    torch.testing.assert_close(vae.iwae_from_log_weights(log_weights), want)


def test_iwae_rejects_bad_k_and_inputs():
    model = vae.VAE(6, 5, 2)
    x = torch.rand(2, 6).bernoulli()
    with pytest.raises(ValueError, match=r"k \(the number of importance samples\) must be >= 1, got 0"):
        vae.iwae_bound(model, x, 0)
    with pytest.raises(TypeError, match="must be an integer"):
        vae.iwae_bound(model, x, 2.5)
    with pytest.raises(TypeError, match="must be an integer, got bool"):
        vae.iwae_bound(model, x, True)
    with pytest.raises(ValueError, match="non-finite"):
        vae.iwae_bound(model, torch.full((2, 6), float("nan")), 3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 6\)"):
        vae.iwae_bound(model, torch.rand(2, 5), 3)
    with pytest.raises(ValueError, match="proposal"):
        vae.log_importance_weights(model, x, 3, proposal="uniform")


def test_iwae_with_k_5000_runs_in_chunks():
    model = vae.VAE(784, (200, 200), 50)
    x = torch.rand(2, 784).bernoulli()
    with torch.inference_mode():
        bound = vae.iwae_bound(model, x, 5000, max_elements=2**20)
    assert bound.shape == (2,) and torch.isfinite(bound).all()


def test_elbo_below_iwae_and_the_bound_rises_with_k():
    # A small random VAE: averaged over many examples, E[ELBO] <= E[IWAE_10] <= E[IWAE_100].
    torch.manual_seed(5)
    model = vae.VAE(30, 20, 5).double()
    x = torch.rand(400, 30, dtype=torch.float64).bernoulli()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbos = torch.stack([vae.elbo(model, x, generator=g) for _ in range(20)]).mean(0)
        bounds = {k: vae.iwae_bound(model, x, k, generator=g) for k in (1, 10, 100)}
    assert elbos.mean() < bounds[10].mean() < bounds[100].mean()
    assert abs(elbos.mean() - bounds[1].mean()) < bounds[10].mean() - elbos.mean()


# ------------------------------------------------------------------------------- linear-Gaussian model


def test_linear_gaussian_exact_quantities():
    model = vae.LinearGaussian(5, 2, sigma=0.4, seed=1)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, cov = model.marginal()
    torch.testing.assert_close(model.log_marginal(x), MultivariateNormal(mean, cov).log_prob(x))
    # Conditioning the joint Gaussian of (z, x): mean C_zx C_xx^-1 (x - b), covariance I - C_zx C_xx^-1 C_xz.
    post_mean, post_cov = model.posterior(x)
    gain = model.W.T @ torch.linalg.inv(cov)
    torch.testing.assert_close(post_mean, (x - model.b) @ gain.T)
    torch.testing.assert_close(post_cov, torch.eye(2, dtype=torch.float64) - gain @ model.W)
    # Bayes' rule: log p(z | x) = log p(x | z) + log p(z) - log p(x) at any z.
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    joint = model.log_likelihood(x, model.decode(z)) + Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(joint - model.log_marginal(x), MultivariateNormal(post_mean, post_cov).log_prob(z))


def test_linear_gaussian_elbo_gap_is_the_kl_to_the_posterior():
    # Nearly collinear columns of W make the posterior strongly correlated, so the factorized q is not exact.
    weight = torch.tensor([[1.0, 0.8], [1.0, 1.2], [0.5, 0.4], [1.0, 1.0]], dtype=torch.float64)
    model = vae.LinearGaussian(4, 2, sigma=0.5, W=weight, b=torch.zeros(4, dtype=torch.float64))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mu, logvar = model.encode(x)
    post_mean, post_cov = model.posterior(x)
    gap = vae.kl_mvn(mu, torch.diag_embed(torch.exp(logvar)), post_mean, post_cov.expand(3, 2, 2))
    repeats = 100_000
    estimates = vae.elbo(model, x.repeat(repeats, 1), generator=torch.Generator().manual_seed(1))
    elbo = estimates.reshape(repeats, 3).mean(0)
    assert (gap > 0.1).all()
    torch.testing.assert_close(elbo, model.log_marginal(x) - gap, rtol=0, atol=0.01)


def test_iwae_converges_to_the_exact_log_likelihood():
    # An encoder wider than the posterior keeps the weights bounded: the bounds converge quickly.
    model = vae.LinearGaussian(6, 3, sigma=0.5, variance_scale=3.0, seed=3)
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 + model.b
    exact = model.log_marginal(x)
    g = torch.Generator().manual_seed(2)
    gaps = {k: exact - vae.iwae_bound(model, x, k, generator=g) for k in (1, 10, 10_000)}
    mean = {k: gap.mean().item() for k, gap in gaps.items()}
    error = {k: gap.std().item() / math.sqrt(len(gap)) for k, gap in gaps.items()}
    assert mean[1] > 0.5  # the ELBO of this encoder is far below log p(x)
    assert mean[1] - mean[10] > 3 * math.hypot(error[1], error[10])
    assert mean[10] - mean[10_000] > 3 * math.hypot(error[10], error[10_000])
    assert abs(mean[10_000]) < 0.01 + 3 * error[10_000]


def test_naive_monte_carlo_converges_in_low_dimension():
    model = vae.LinearGaussian(3, 1, sigma=0.8, seed=4)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + model.b
    estimate = vae.naive_log_likelihood(model, x, 200_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate, model.log_marginal(x), rtol=0, atol=0.02)


def test_interpolate_endpoints_and_linearity():
    model = vae.LinearGaussian(5, 2, seed=5)
    x0, x1 = torch.randn(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    path = vae.interpolate(model, x0, x1, steps=5)
    assert path.shape == (5, 5)
    torch.testing.assert_close(path[0], model.decode(model.encode(x0[None])[0])[0])
    torch.testing.assert_close(path[-1], model.decode(model.encode(x1[None])[0])[0])
    torch.testing.assert_close(path[2], (path[0] + path[-1]) / 2)  # a linear decoder: midpoints map to midpoints
    bernoulli = vae.VAE(5, 4, 2).double()
    strip = vae.interpolate(bernoulli, x0.sigmoid(), x1.sigmoid(), 7)
    assert strip.shape == (7, 5) and 0 <= strip.min() and strip.max() <= 1
    with pytest.raises(ValueError, match="steps"):
        vae.interpolate(model, x0, x1, steps=1)
    with pytest.raises(ValueError, match="x1 must be one example"):
        vae.interpolate(model, x0, torch.zeros(2, 5, dtype=torch.float64), steps=3)


# ------------------------------------------------------------------------------------------- training


@pytest.mark.slow
def test_a_short_training_run_raises_the_elbo():
    images = data.load_mnist("train").images[:3000]
    test_images = data.binarize(data.load_mnist("test").images[:500], torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = vae.VAE(784, 64, 8)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        before = vae.elbo(model, test_images, generator=g).mean().item()
    history = train.fit(model, vae.elbo_loss, images, epochs=3, batch_size=100, progress=False, device="cpu")
    with torch.no_grad():
        after = vae.elbo(model, test_images, generator=g).mean().item()
    assert history.train_loss[-1] < history.train_loss[0]
    assert after > before + 200, (before, after)
    assert after > -250, after


def test_a_cpu_generator_gives_the_same_draws_on_every_device(device):
    """The one generator rule (runtime.randn/rand): noise is drawn on the generator's device and then moved, so a
    seeded CPU generator corrupts, binarizes and samples identically for data on the CPU or on an accelerator."""
    from coursepkg import autoencoders, data

    x = torch.rand(6, 12, generator=torch.Generator().manual_seed(0))
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    draws = {
        "masking": lambda v: autoencoders.masking_noise(v, 0.4, generator=torch.Generator().manual_seed(1)),
        "gaussian": lambda v: autoencoders.gaussian_noise(v, 0.3, generator=torch.Generator().manual_seed(2)),
        "binarize": lambda v: data.binarize(v, torch.Generator().manual_seed(3)),
    }
    for name, draw in draws.items():
        on_device = draw(x.to(device))
        assert on_device.device.type == device.type, name
        torch.testing.assert_close(on_device.cpu(), draw(x), rtol=1e-6, atol=1e-6, msg=name)
    z = vae.reparameterize(mu.to(device), logvar.to(device), torch.Generator().manual_seed(4))
    torch.testing.assert_close(z.cpu(), vae.reparameterize(mu, logvar, torch.Generator().manual_seed(4)))


# --- the package's layout ---------------------------------------------------------------------------------------


def test_every_public_name_is_importable_from_the_package_and_graded_ones_live_in_its_init():
    from coursepkg.exercise import EXERCISES
    from coursepkg.vae import gradient_estimators, importance_sampling, interpolation, linear_gaussian, model, objective

    for module in (model, objective, importance_sampling, interpolation, linear_gaussian, gradient_estimators):
        for name in module.__all__:
            assert getattr(vae, name) is getattr(module, name) and name in vae.__all__
    graded = {name for module, name in EXERCISES if module == "coursepkg.vae"}
    assert graded == {"reparameterize", "gaussian_kl", "kl_mvn", "bernoulli_elbo", "iwae_from_log_weights"}
    assert all(getattr(vae, name).__module__ == "coursepkg.vae" for name in graded)
