"""The checks of chapter 6 pass the reference solutions and fail deliberately wrong ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from coursepkg import vae
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

CHECKS = {check.name: check for check in checks_for("ch06_vae")}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_at_least_four_functions():
    assert len(CHECKS) >= 4


# ----------------------------------------------------------------------------------------- mutations


def _noise(mu, generator):
    return torch.randn(mu.shape, generator=generator, dtype=mu.dtype)


def reparameterize_std_is_variance(mu, logvar, generator=None):
    return mu + torch.exp(logvar) * _noise(mu, generator)


def reparameterize_logvar_as_std(mu, logvar, generator=None):
    return mu + logvar * _noise(mu, generator)


def reparameterize_detached(mu, logvar, generator=None):
    return torch.normal(mu.detach(), torch.exp(0.5 * logvar.detach()), generator=generator)


def reparameterize_ignores_generator(mu, logvar, generator=None):
    return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, dtype=mu.dtype)


def reparameterize_mean_only(mu, logvar, generator=None):
    return mu + 0.0 * logvar


def reparameterize_detached_noise_scale(mu, logvar, generator=None):
    return mu + torch.exp(0.5 * logvar).detach() * _noise(mu, generator)


def gaussian_kl_wrong_sign(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 + logvar).sum(-1)


def gaussian_kl_no_half(mu, logvar):
    return (torch.exp(logvar) + mu**2 - 1 - logvar).sum(-1)


def gaussian_kl_summed_over_batch(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(0)


def kl_mvn_swapped(mu0, cov0, mu1, cov1):
    return vae.kl_mvn(mu1, cov1, mu0, cov0)


def kl_mvn_no_dimension(mu0, cov0, mu1, cov1):
    return vae.kl_mvn(mu0, cov0, mu1, cov1) + 0.5 * mu0.shape[-1]


def kl_mvn_transposed_trace(mu0, cov0, mu1, cov1):
    d = mu0.shape[-1]
    inv1 = torch.linalg.inv(cov1)
    diff = mu1 - mu0
    return 0.5 * (
        torch.trace(cov0 @ cov1)  # forgot the inverse
        + diff @ inv1 @ diff
        - d
        + torch.logdet(cov1)
        - torch.logdet(cov0)
    )


def bernoulli_elbo_unstable(x, logits, mu, logvar):
    p = torch.sigmoid(logits)
    log_likelihood = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)
    return log_likelihood - vae.gaussian_kl(mu, logvar)


def bernoulli_elbo_plus_kl(x, logits, mu, logvar):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1) + vae.gaussian_kl(mu, logvar)


def bernoulli_elbo_mean_over_pixels(x, logits, mu, logvar):
    log_likelihood = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(-1)
    return log_likelihood - vae.gaussian_kl(mu, logvar)


def iwae_naive(log_weights):
    return torch.log(torch.exp(log_weights).mean(1))


def iwae_no_mean(log_weights):
    return torch.logsumexp(log_weights, 1)


def iwae_mean_of_logs(log_weights):
    return log_weights.mean(1)


def iwae_wrong_axis(log_weights):
    return torch.logsumexp(log_weights, 0) - math.log(log_weights.shape[0])


MUTANTS = {
    "reparameterize": [
        reparameterize_std_is_variance,
        reparameterize_logvar_as_std,
        reparameterize_detached,
        reparameterize_ignores_generator,
        reparameterize_mean_only,
        reparameterize_detached_noise_scale,
    ],
    "gaussian_kl": [gaussian_kl_wrong_sign, gaussian_kl_no_half, gaussian_kl_summed_over_batch],
    "kl_mvn": [kl_mvn_swapped, kl_mvn_no_dimension, kl_mvn_transposed_trace],
    "bernoulli_elbo": [bernoulli_elbo_unstable, bernoulli_elbo_plus_kl, bernoulli_elbo_mean_over_pixels],
    "iwae_from_log_weights": [iwae_naive, iwae_no_mean, iwae_mean_of_logs, iwae_wrong_axis],
}


@pytest.mark.parametrize(
    ("name", "mutant"),
    [(name, mutant) for name, mutants in MUTANTS.items() for mutant in mutants],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_wrong_solutions_fail(name, mutant):
    failures = run_in_process(CHECKS[name], mutant)
    assert failures, f"{mutant} passed the check of {name}"
    assert failures[0].startswith("case ")


def test_unimplemented_exercise_reports_it():
    def reparameterize(mu, logvar, generator=None):
        raise NotImplementedError("draw eps")

    assert run_in_process(CHECKS["reparameterize"], reparameterize) == [
        "reparameterize is not implemented yet: draw eps"
    ]
