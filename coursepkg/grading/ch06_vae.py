"""Checks of the graded functions of chapter 6 (``coursepkg.vae``).

Every reference is independent of the code it grades: ``torch.distributions`` (``Normal``, ``Bernoulli``,
``MultivariateNormal`` and ``kl_divergence``), ``torch.logsumexp``, and for ``reparameterize`` statistics of
the samples (mean, variance) and the exact derivatives dz/dmu = 1, dz/dlogvar = (z - mu) / 2.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal, kl_divergence

from .. import vae
from .checks import Check, CheckError, Outputs, allclose, call_with_tensors

# ------------------------------------------------------------------------------------------ reparameterize

REPARAM_SAMPLES = 4000


def _reparameterize_cases(rng: np.random.Generator) -> list[dict]:
    d = int(rng.integers(1, 7))
    logvar = rng.uniform(-3.0, 2.0, size=d)
    logvar[rng.integers(d)] = rng.choice([-2.5, 1.5])  # at least one sigma far from 1
    return [
        {
            "mu": rng.uniform(-3.0, 3.0, size=d),
            "logvar": logvar,
            "n": REPARAM_SAMPLES,
            "seed": int(rng.integers(2**31)),
        }
    ]


def _reparameterize_call(candidate, case: dict) -> dict:
    n, d = case["n"], case["mu"].shape[0]
    mu = torch.from_numpy(case["mu"]).expand(n, d).clone().requires_grad_(True)
    logvar = torch.from_numpy(case["logvar"]).expand(n, d).clone().requires_grad_(True)

    def draw(seed: int):
        return candidate(mu, logvar, generator=torch.Generator().manual_seed(seed))

    z = draw(case["seed"])
    if not torch.is_tensor(z):
        raise CheckError(f"reparameterize returned a {type(z).__name__}; expected a tensor")
    if tuple(z.shape) != (n, d):
        raise CheckError(f"z has shape {tuple(z.shape)}, expected the shape of mu, {(n, d)}")
    if not z.requires_grad:
        raise CheckError(
            "z does not depend differentiably on mu and logvar (no gradient can flow back): compute "
            "z = mu + sigma * eps with eps drawn separately, not with a sampling function of mu"
        )
    grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True)
    if grad_mu is None or grad_logvar is None:
        missing = "mu" if grad_mu is None else "logvar"
        raise CheckError(f"z does not depend on {missing}: no gradient reaches it")
    again = draw(case["seed"])
    return {
        "z": z.detach(),
        "grad_mu": grad_mu,
        "grad_logvar": grad_logvar,
        "reproducible": bool(torch.equal(z.detach(), again.detach())),
    }


def _reparameterize_expect(case: dict) -> dict:
    return {"mean": case["mu"], "std": np.exp(0.5 * case["logvar"])}


def _reparameterize_compare(expected: Outputs, got: Outputs, case: dict) -> str | None:
    if not bool(got["reproducible"]):
        return (
            "two calls with generators seeded alike gave different samples: draw eps from the generator "
            "argument, e.g. torch.randn(mu.shape, generator=generator, dtype=mu.dtype)"
        )
    z, mean, std = got["z"].astype(np.float64), expected["mean"], expected["std"]
    n = z.shape[0]
    if not np.all(np.isfinite(z)):
        return "z has non-finite entries"
    sample_mean, sample_std = z.mean(axis=0), z.std(axis=0, ddof=1)
    for j in range(z.shape[1]):
        mean_ok = abs(sample_mean[j] - mean[j]) <= 5.0 * std[j] / math.sqrt(n)
        std_ok = abs(sample_std[j] / std[j] - 1.0) <= 6.0 * math.sqrt(0.5 / n) + 1e-3
        if not (mean_ok and std_ok):
            return (
                f"over {n} samples, coordinate {j} of z has mean {sample_mean[j]:.4g} and standard deviation "
                f"{sample_std[j]:.4g}; expected about mu = {mean[j]:.4g} and sigma = exp(logvar / 2) = {std[j]:.4g}"
            )
    if not np.allclose(got["grad_mu"], 1.0, rtol=1e-6, atol=1e-8):
        return f"d z / d mu should be 1 for every entry (z = mu + sigma * eps); got values such as {got['grad_mu'][0]}"
    want = 0.5 * (z - mean)
    if not np.allclose(got["grad_logvar"], want, rtol=1e-5, atol=1e-8):
        return (
            "d z / d logvar should be sigma * eps / 2 = (z - mu) / 2 (sigma = exp(logvar / 2)); got "
            f"{got['grad_logvar'][0, 0]:.6g} for z - mu = {z[0, 0] - mean[0]:.6g} at entry [0, 0]"
        )
    return None


# ------------------------------------------------------------------------------------------------ KLs


def _normal_kl_reference(mu: np.ndarray, logvar: np.ndarray) -> torch.Tensor:
    mu, logvar = torch.from_numpy(mu), torch.from_numpy(logvar)
    q = Normal(mu, torch.exp(0.5 * logvar))
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(q, prior).sum(-1)


def _gaussian_kl_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for _ in range(3):
        n, d = int(rng.integers(1, 9)), int(rng.integers(1, 11))
        cases.append({"mu": rng.normal(0.0, 2.0, size=(n, d)), "logvar": rng.uniform(-4.0, 3.0, size=(n, d))})
    return cases


def _gaussian_kl_expect(case: dict) -> np.ndarray:
    return _normal_kl_reference(case["mu"], case["logvar"]).numpy()


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + rng.uniform(0.1, 1.0) * np.eye(d)


def _kl_mvn_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for _ in range(3):
        d = int(rng.integers(1, 6))
        cases.append(
            {
                "mu0": rng.normal(size=d),
                "cov0": _spd(rng, d),
                "mu1": rng.normal(size=d),
                "cov1": _spd(rng, d),
            }
        )
    return cases


def _kl_mvn_expect(case: dict) -> np.ndarray:
    t = {name: torch.from_numpy(value) for name, value in case.items()}
    p0 = MultivariateNormal(t["mu0"], covariance_matrix=t["cov0"])
    p1 = MultivariateNormal(t["mu1"], covariance_matrix=t["cov1"])
    return kl_divergence(p0, p1).numpy()


# ------------------------------------------------------------------------------------------- the ELBO


def _bernoulli_elbo_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for i in range(3):
        n, big_d, d = int(rng.integers(1, 7)), int(rng.integers(1, 31)), int(rng.integers(1, 6))
        logits = rng.normal(0.0, 3.0, size=(n, big_d))
        if i == 2:  # confident decoders: sigmoid(logits) rounds to 0 or 1, log(1 - p) must not become -inf
            logits = rng.choice([-60.0, 60.0], size=(n, big_d)) + rng.normal(size=(n, big_d))
        cases.append(
            {
                "x": rng.integers(0, 2, size=(n, big_d)).astype(np.float64),
                "logits": logits,
                "mu": rng.normal(size=(n, d)),
                "logvar": rng.uniform(-3.0, 2.0, size=(n, d)),
            }
        )
    return cases


def _bernoulli_elbo_expect(case: dict) -> np.ndarray:
    x, logits = torch.from_numpy(case["x"]), torch.from_numpy(case["logits"])
    log_likelihood = Bernoulli(logits=logits).log_prob(x).sum(-1)
    return (log_likelihood - _normal_kl_reference(case["mu"], case["logvar"])).numpy()


# ------------------------------------------------------------------------------- importance weighting


def _iwae_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for i in range(3):
        n, k = int(rng.integers(1, 7)), int(rng.integers(1, 61))
        if i == 0:
            k = 1  # one sample: the bound is the log-weight itself
        # Log-weights of a VAE on MNIST are around -100; below about -745 exp() underflows to 0 even in float64.
        centre = rng.uniform(-1500.0, -800.0) if i == 1 else rng.uniform(-300.0, -50.0)
        cases.append({"log_weights": centre + rng.normal(0.0, rng.uniform(0.5, 30.0), size=(n, k))})
    return cases


def _iwae_expect(case: dict) -> np.ndarray:
    log_weights = torch.from_numpy(case["log_weights"])
    return (torch.logsumexp(log_weights, dim=1) - math.log(log_weights.shape[1])).numpy()


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=vae.reparameterize,
        points=1,
        cases=_reparameterize_cases,
        expect=_reparameterize_expect,
        call=_reparameterize_call,
        compare=_reparameterize_compare,
        description="samples have mean mu and standard deviation exp(logvar / 2), follow the generator, and pass "
        "gradients to mu and logvar",
    ),
    Check(
        function=vae.gaussian_kl,
        points=2,
        cases=_gaussian_kl_cases,
        expect=_gaussian_kl_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-6, atol=1e-8),
        description="per-example KL(N(mu, sigma^2) || N(0, I)) against torch.distributions.kl_divergence",
    ),
    Check(
        function=vae.kl_mvn,
        points=3,
        cases=_kl_mvn_cases,
        expect=_kl_mvn_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-6, atol=1e-8),
        description="KL between two full-covariance Gaussians against torch.distributions.MultivariateNormal",
    ),
    Check(
        function=vae.bernoulli_elbo,
        points=2,
        cases=_bernoulli_elbo_cases,
        expect=_bernoulli_elbo_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-6, atol=1e-6),
        description="Bernoulli log-likelihood minus Gaussian KL against torch.distributions, large logits included",
    ),
    Check(
        function=vae.iwae_from_log_weights,
        points=2,
        cases=_iwae_cases,
        expect=_iwae_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-9, atol=1e-7),
        description="log of the mean importance weight against torch.logsumexp, with weights that underflow",
    ),
]
