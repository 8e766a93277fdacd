"""The benchmark harness measures what it says: the FLOP count, the idiom's data, and a report from a real run.

Speed targets live in bench/REPORT.md; these tests check correctness only, on small synthetic inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from coursepkg import train
from coursepkg.autoencoders import MLPAutoencoder
from coursepkg.vae import VAE, elbo_loss
from tools import bench

ROOT = Path(__file__).resolve().parents[1]


def linear_stack_training_flops(widths: list[int]) -> int:
    """Closed form for a stack of linear layers: forward, weight gradient and input gradient each cost
    2 * in * out FLOPs per example, except that the first layer's input needs no gradient."""
    products = [a * b for a, b in zip(widths[:-1], widths[1:], strict=False)]
    return 6 * sum(products) - 2 * products[0]


@pytest.mark.parametrize("widths", [[784, 1000, 500, 250, 30], [20, 7, 3], [9, 4, 2, 1]])
def test_flop_count_of_an_autoencoder_matches_the_closed_form(widths):
    model = MLPAutoencoder(tuple(widths))

    def squared_error(m, x):
        return ((m(x) - x) ** 2).sum(dim=1).mean()

    encoder_and_decoder = widths + widths[-2::-1]
    expected = linear_stack_training_flops(encoder_and_decoder)
    assert bench.training_flops_per_example(model, squared_error, n_features=widths[0]) == expected


@pytest.mark.parametrize("hidden, latent", [(400, 20), ((200, 200), 50)])
def test_flop_count_of_a_vae_matches_the_closed_form(hidden, latent):
    hidden = (hidden,) if isinstance(hidden, int) else hidden
    model = VAE(784, hidden, latent, "bernoulli")
    encoder = [784, *hidden]
    # Encoder trunk, then two heads (mean and log-variance) of hidden[-1] x latent, then the decoder.
    trunk = linear_stack_training_flops(encoder)
    heads = 2 * 6 * hidden[-1] * latent
    decoder = 6 * sum(a * b for a, b in zip([latent, *hidden[::-1]], [*hidden[::-1], 784], strict=True))
    assert bench.training_flops_per_example(model, elbo_loss) == trunk + heads + decoder


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_idiom_dataset_yields_what_the_resident_tensor_holds(seed):
    """Both loops must train on the same numbers: ToTensor's scaling of one uint8 image equals ours."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    dataset = bench.PerExampleMNIST(images, np.arange(6))
    resident = torch.from_numpy(images).float().div(255).view(6, -1)
    for i in range(6):
        image, label = dataset[i]
        assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == i
        assert torch.equal(image.view(-1), resident[i])


def test_matmul_rate_is_a_positive_finite_rate():
    rate = bench.matmul_rate(size=128, min_run_time=0.05, device=torch.device("cpu"))
    assert np.isfinite(rate) and rate > 1e6  # any CPU of this century does a megaFLOP per second


def test_the_harness_reads_and_writes_the_repository_not_site_packages():
    assert bench.ROOT == ROOT and (bench.ROOT / "pyproject.toml").is_file()
    assert (bench.ROOT / "book" / "setup.md").is_file()  # the chapters it executes


def test_engine_and_autograd_step_times_are_positive_and_finite():
    times = bench.engine_vs_autograd(width=8, min_run_time=0.01)
    for key in ("hand_written_backward_s", "engine_s", "torch_autograd_s"):
        assert np.isfinite(times[key]) and 0 < times[key] < 1, (key, times[key])


def test_throughput_rows_are_consistent():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (256, 28, 28), generator=generator, dtype=torch.uint8)
    rate = 1e10
    rows = bench.throughput(images, (64,), rate, torch.device("cpu"), model_names=("VAE 784-400-20",), repeats=3)
    (row,) = rows
    assert row["examples"] == 256 and row["batch_size"] == 64
    for loop in bench.LOOPS:
        assert len(row[f"{loop}_epoch_seconds"]) == 3
        fastest = min(row[f"{loop}_epoch_seconds"])
        assert row[f"{loop}_examples_per_second"] == pytest.approx(256 / fastest)
    assert row["speedup"] == pytest.approx(row["ours_examples_per_second"] / row["dataloader_examples_per_second"])
    assert row["ours_seconds_per_60k_epoch"] == pytest.approx(60_000 / row["ours_examples_per_second"])
    assert row["floor_seconds_per_60k_epoch"] == pytest.approx(row["training_flops_per_example"] * 60_000 / rate)
    assert row["ours_fraction_of_floor"] == pytest.approx(
        row["floor_seconds_per_60k_epoch"] / row["ours_seconds_per_60k_epoch"]
    )
    assert row["bare_speedup"] == pytest.approx(row["bare_examples_per_second"] / row["dataloader_examples_per_second"])
    assert row["ours_fraction_of_bare"] == pytest.approx(
        row["ours_examples_per_second"] / row["bare_examples_per_second"]
    )
    assert row["bfloat16_speedup"] == pytest.approx(
        row["ours_bfloat16_examples_per_second"] / row["ours_examples_per_second"]
    )


def test_throughput_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="images_uint8"):
        bench.throughput(torch.zeros(4, 784), (64,), 1e10, torch.device("cpu"))
    with pytest.raises(ValueError, match="model_names"):
        bench.throughput(torch.zeros(4, 28, 28, dtype=torch.uint8), (2,), 1e10, torch.device("cpu"), ("nope",))
    with pytest.raises(ValueError, match="repeats"):
        bench.throughput(torch.zeros(4, 28, 28, dtype=torch.uint8), (2,), 1e10, torch.device("cpu"), repeats=0)


def two_identical_small_vaes() -> tuple[VAE, VAE]:
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(VAE(784, 16, 2, "bernoulli"))
    return models[0], models[1]


def test_our_epoch_trains_like_fit():
    """The timed epoch is one call of train.fit: the same weights as calling fit directly."""
    x = torch.rand(200, 784, generator=torch.Generator().manual_seed(3))
    timed, direct = two_identical_small_vaes()
    seconds = bench.our_epoch(timed, elbo_loss, x, 50, torch.device("cpu"), seed=4)
    train.fit(direct, elbo_loss, x, epochs=1, batch_size=50, device="cpu", seed=4, progress=False)
    assert seconds > 0
    for p, q in zip(timed.parameters(), direct.parameters(), strict=True):
        assert torch.equal(p, q)


def test_report_lists_every_measured_row(tmp_path):
    rows = [
        {
            "model": name,
            "batch_size": 128,
            "examples": 1000,
            "ours_examples_per_second": 5000.0 + i,
            "ours_bfloat16_examples_per_second": 7000.0,
            "dataloader_examples_per_second": 2000.0,
            "speedup": 2.5 - i,
            "bare_examples_per_second": 5500.0,
            "bare_speedup": 2.75,
            "ours_fraction_of_bare": 0.9,
            "ours_seconds_per_60k_epoch": 12.0,
            "dataloader_seconds_per_60k_epoch": 30.0,
            "floor_seconds_per_60k_epoch": 6.0,
            "ours_fraction_of_floor": 0.5,
        }
        for i, name in enumerate(["VAE 784-400-20", "b"])
    ]
    results = {
        "date": "2026-11-22",
        "machine": {"cpu": "cpu", "cores": 2, "torch": "2.13.0", "torch_threads": 2, "device": "cpu", "python": "3"},
        "matmul_gflops": 50.0,
        "throughput": rows,
        "quality": [
            {"precision": "float32", "epoch": 1, "seconds": 8.0, "test_negative_elbo": 121.25},
            {"precision": "bfloat16", "epoch": 1, "seconds": 6.0, "test_negative_elbo": 121.5},
            {"precision": "bfloat16", "epoch": 2, "seconds": 12.0, "test_negative_elbo": 110.0},
        ],
        "step_breakdown": [
            {
                "model": "VAE 784-400-20",
                "batch_size": 512,
                "milliseconds_per_step": 16.25,
                "fractions": {"matrix multiplies": 0.625, "random numbers": 0.125, "everything else": 0.25},
            }
        ],
        "chapters": [{"chapter": "01.md", "seconds": 8.0, "peak_rss_mib": 500.0}, {"chapter": "02.md", "error": "x"}],
    }
    report = bench.report_markdown(results)
    json.dumps(results)  # what main writes must be JSON
    assert "| VAE 784-400-20 | 128 | 5,000 | 7,000 | 5,500 | 2,000 | 2.50x | 2.75x | 90% |" in report
    assert "| b | 128 | 5,001 |" in report
    assert "| 1 | 8.0 | 121.25 | 6.0 | 121.50 |" in report  # the precisions side by side, epoch by epoch
    assert "| 2 |  |  | 12.0 | 110.00 |" in report
    assert "float32 121.25 nats after 1 epochs (8 s); bfloat16 110.00 nats after 2 epochs (12 s)" in report
    assert "| 02.md | failed |" in report
    assert "All chapters together: 8 s." in report
    assert (
        "(VAE 784-400-20, batch 128, cpu): **2.50x**, met (the bare loop, the ceiling for float32, reached 2.75x;"
        in report
    )
    assert "bfloat16 autocast 3.50x)." in report
    assert "not measured here (no GPU" in report
    assert "(quick profile): missed" in report  # a chapter failed
    assert "| VAE 784-400-20 | 16.2 | 62% | 12% | 25% |" in report
    bench.write_report(results, tmp_path)
    assert (tmp_path / "REPORT.md").read_text() == report
    assert (tmp_path / "quality_per_second.png").read_bytes().startswith(b"\x89PNG")


def test_flop_count_leaves_no_gradient_behind():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 4))
    bench.training_flops_per_example(model, lambda m, x: m(x).sum(), n_features=4)
    assert all(p.grad is None for p in model.parameters())


def test_step_breakdown_accounts_for_the_whole_step():
    images = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    breakdown = bench.step_breakdown("VAE 784-400-20", images, 32, steps=3)
    fractions = breakdown["fractions"]
    assert set(fractions) == {*bench.STEP_PARTS, "everything else"}
    assert sum(fractions.values()) == pytest.approx(1.0)
    # A VAE step multiplies matrices, draws random numbers (binarization, noise) and runs the optimizer.
    assert all(fractions[part] > 0 for part in bench.STEP_PARTS)
    assert breakdown["milliseconds_per_step"] > 0
    with pytest.raises(ValueError, match="batch_size"):
        bench.step_breakdown("VAE 784-400-20", images, 65)


def test_the_bare_loop_takes_the_steps_of_a_plain_loop():
    """bare_epoch is the model's own work: consecutive batches, the default optimizer, nothing else."""
    x = torch.rand(96, 784, generator=torch.Generator().manual_seed(5))
    timed, plain = two_identical_small_vaes()
    bench.bare_epoch(timed, elbo_loss, x, 32, torch.device("cpu"), seed=7)
    torch.manual_seed(7)
    optimizer = train.default_optimizer(plain.parameters(), 1e-3, torch.device("cpu"))
    for start in (0, 32, 64):
        optimizer.zero_grad()
        elbo_loss(plain, x[start : start + 32]).backward()
        optimizer.step()
    for p, q in zip(timed.parameters(), plain.parameters(), strict=True):
        assert torch.equal(p, q)
