"""The benchmark harness: ``python -m coursepkg.bench [--quick] [--out bench]``.

In one process it measures, on the machine at hand,

* the matrix-multiply rate (2048 x 2048 x 2048, float32), the floor every training loop is compared with;
* training throughput of the course's models with our loop (:func:`coursepkg.train.fit`: data resident on the
  device, shuffled index batches, no per-batch host synchronisation) and, side by side, with the usual idiom:
  a ``DataLoader`` over a per-example ``Dataset`` that turns one uint8 image at a time into a float tensor
  through PIL, as torchvision's MNIST with ``ToTensor`` does, and reads ``loss.item()`` every batch, as the
  PyTorch examples' VAE does;
* how close each loop comes to the floor (the model's floating-point operations per epoch divided by the
  matrix-multiply rate);
* the quality reached per unit of time (test loss of the 784-400-20 VAE after a fixed number of seconds);
* the chapter-3 engine against torch.autograd on the same two-layer network (time per step);
* each chapter's execution time and peak resident memory (quick profile, one fresh kernel each);

and writes ``bench/results.json`` and ``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import data, runtime, train

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------- the floor


def matmul_rate(size: int = 2048, repeats: int = 10, device: torch.device | None = None) -> float:
    """Measured float32 matrix-multiply rate in FLOP/s (best of ``repeats`` after two warm-up products)."""
    device = device or runtime.device()
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        a @ b
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_flops_per_example(model: nn.Module) -> int:
    """Multiply-adds of every ``nn.Linear`` counted twice (a FLOP each), forward plus a backward pass that
    costs twice the forward one: ``6 * sum(in * out)`` per example."""
    weights = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return 6 * weights


# ------------------------------------------------------------------------------------------------ models


def models() -> dict[str, tuple[Callable[[], nn.Module], Callable]]:
    """The chapter models and their training losses (mean over the batch)."""
    from .autoencoders import MLPAutoencoder
    from .vae import VAE, elbo_loss

    def squared_error(model, x):
        return ((model(x) - x) ** 2).sum(dim=1).mean()

    return {
        "VAE 784-400-20": (lambda: VAE(784, 400, 20, "bernoulli"), elbo_loss),
        "VAE 784-200-200-50": (lambda: VAE(784, (200, 200), 50, "bernoulli"), elbo_loss),
        "deep AE 784-1000-500-250-30": (lambda: MLPAutoencoder((784, 1000, 500, 250, 30)), squared_error),
    }


# ---------------------------------------------------------------------------------- the DataLoader idiom


class PerExampleMNIST(torch.utils.data.Dataset):
    """torchvision's MNIST with ``ToTensor``, without torchvision: one uint8 image at a time through PIL."""

    def __init__(self, images_uint8: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images_uint8, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        picture = Image.fromarray(self.images[index], mode="L")
        tensor = torch.from_numpy(np.array(picture, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1)
        return tensor.float().div(255), int(self.labels[index])


def dataloader_epoch(model, loss_fn, dataset, batch_size: int, device: torch.device, seed: int) -> float:
    """One epoch of the PyTorch examples' loop; returns the seconds it took."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    model.train()
    total = 0.0
    _synchronize(device)
    started = time.perf_counter()
    for x, _ in loader:
        x = x.to(device).view(-1, 784)
        optimizer.zero_grad()
        loss = loss_fn(model, x)
        loss.backward()
        total += loss.item()  # the examples' idiom: one host synchronisation per batch
        optimizer.step()
    _synchronize(device)
    return time.perf_counter() - started


def our_epoch(model, loss_fn, images: torch.Tensor, batch_size: int, device: torch.device, seed: int) -> float:
    """One epoch of :func:`coursepkg.train.fit` on data already on the device; returns the seconds it took."""
    _synchronize(device)
    started = time.perf_counter()
    train.fit(model, loss_fn, images, epochs=1, batch_size=batch_size, device=device, seed=seed, progress=False)
    _synchronize(device)
    return time.perf_counter() - started


def throughput(n_examples: int, batch_sizes: tuple[int, ...], rate: float, device: torch.device) -> list[dict]:
    """Examples per second of both loops for every model and batch size, and the fraction of the floor."""
    images_uint8 = (data.load_mnist("train", flatten=False).images[:n_examples] * 255).round().to(torch.uint8)
    dataset = PerExampleMNIST(images_uint8.numpy(), np.zeros(n_examples, dtype=np.int64))
    resident = images_uint8.float().div(255).view(n_examples, -1).to(device)
    rows = []
    for name, (build, loss_fn) in models().items():
        for batch_size in batch_sizes:
            row = {"model": name, "batch_size": batch_size, "examples": n_examples}
            for loop in ("ours", "dataloader"):
                runtime.seed_everything(0)
                model = build().to(device)
                # Warm up (allocator, kernels) on a few batches before timing a whole epoch.
                if loop == "ours":
                    our_epoch(model, loss_fn, resident[: batch_size * 4], batch_size, device, 0)
                    seconds = our_epoch(model, loss_fn, resident, batch_size, device, 1)
                else:
                    warm = torch.utils.data.Subset(dataset, range(batch_size * 4))
                    dataloader_epoch(model, loss_fn, warm, batch_size, device, 0)
                    seconds = dataloader_epoch(model, loss_fn, dataset, batch_size, device, 1)
                row[f"{loop}_examples_per_second"] = n_examples / seconds
                row[f"{loop}_seconds_per_60k_epoch"] = seconds * 60_000 / n_examples
            flops = training_flops_per_example(build()) * n_examples
            floor = flops / rate
            row["floor_seconds_per_60k_epoch"] = floor * 60_000 / n_examples
            row["ours_fraction_of_floor"] = row["floor_seconds_per_60k_epoch"] / row["ours_seconds_per_60k_epoch"]
            row["dataloader_fraction_of_floor"] = (
                row["floor_seconds_per_60k_epoch"] / row["dataloader_seconds_per_60k_epoch"]
            )
            row["speedup"] = row["ours_examples_per_second"] / row["dataloader_examples_per_second"]
            rows.append(row)
            print(
                f"  {name} batch {batch_size}: ours {row['ours_examples_per_second']:,.0f}/s, "
                f"DataLoader {row['dataloader_examples_per_second']:,.0f}/s, x{row['speedup']:.2f}",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------------ quality per second


def quality_per_time(seconds: float, device: torch.device) -> list[dict]:
    """Test negative ELBO of the 784-400-20 VAE after each epoch, until ``seconds`` of training have passed."""
    from .vae import VAE, elbo_loss

    train_images = data.load_mnist("train").images
    test_images = data.load_mnist("test").images[:2000]
    runtime.seed_everything(0)
    model = VAE(784, 400, 20, "bernoulli").to(device)
    points, elapsed, epoch = [], 0.0, 0
    checkpoint = ROOT / "_build" / "bench-quality.pt"
    checkpoint.unlink(missing_ok=True)
    while elapsed < seconds:
        epoch += 1
        started = time.perf_counter()
        train.fit(
            model,
            elbo_loss,
            train_images,
            epochs=epoch,
            batch_size=128,
            device=device,
            checkpoint=checkpoint,
            progress=False,
        )
        elapsed += time.perf_counter() - started
        torch.manual_seed(0)
        loss = train.evaluate(model, lambda m, x: elbo_loss(m, x), test_images, device=device)
        points.append({"epoch": epoch, "seconds": elapsed, "test_negative_elbo": loss})
        print(f"  after {elapsed:.1f} s ({epoch} epochs): test -ELBO {loss:.2f} nats", flush=True)
    checkpoint.unlink(missing_ok=True)
    return points


# ------------------------------------------------------------------------------------- engine vs autograd


def engine_vs_autograd(steps: int = 200, width: int = 64, batch: int = 1) -> dict:
    """Seconds per gradient step of the chapter-3 engine and of torch.autograd on one two-layer network."""
    from . import backprop

    rng = np.random.default_rng(0)
    d, h, k = 784, width, 10
    params = [rng.standard_normal(s) * 0.1 for s in ((h, d), (h,), (k, h), (k,))]
    x, t = rng.random(d), np.eye(k)[3]

    started = time.perf_counter()
    for _ in range(steps):
        backprop.two_layer_backward(*params, x, t)
    by_hand = (time.perf_counter() - started) / steps

    engine_step = getattr(backprop, "engine_two_layer_step", None)
    engine = None
    if engine_step is not None:
        started = time.perf_counter()
        for _ in range(steps):
            engine_step(*params, x, t)
        engine = (time.perf_counter() - started) / steps

    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    xt, tt = torch.tensor(x), torch.tensor(t)
    started = time.perf_counter()
    for _ in range(steps):
        w1, b1, w2, b2 = tensors
        y = w2 @ torch.sigmoid(w1 @ xt + b1) + b2
        loss = 0.5 * ((y - tt) ** 2).sum()
        torch.autograd.grad(loss, tensors)
    autograd = (time.perf_counter() - started) / steps
    return {
        "hand_written_backward_s": by_hand,
        "engine_s": engine,
        "torch_autograd_s": autograd,
        "network": f"{d}-{h}-{k}, logistic hidden, linear output, float64, one example",
    }


# ------------------------------------------------------------------------------------ chapter executions


def chapter_runs(chapters: list[Path]) -> list[dict]:
    """Execute each chapter in a fresh kernel (quick profile); wall time and the kernel's peak resident memory."""
    rows = []
    for chapter in chapters:
        command = [sys.executable, "-m", "coursepkg.bench", "--execute-one", str(chapter)]
        env = {**os.environ, "COURSE_PROFILE": "quick"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if result.returncode != 0:
            rows.append({"chapter": chapter.name, "error": result.stderr[-2000:]})
            continue
        rows.append({"chapter": chapter.name, **json.loads(result.stdout.strip().splitlines()[-1])})
        print(f"  {chapter.name}: {rows[-1]['seconds']:.1f} s, peak {rows[-1]['peak_rss_mib']:.0f} MiB", flush=True)
    return rows


def _execute_one(path: Path) -> None:
    """Run one chapter with nbclient; print its wall time and the peak resident memory of its kernel."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    client = NotebookClient(
        notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the kernel, reaped by now
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


# ---------------------------------------------------------------------------------------------- reporting


def machine() -> dict:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    device = runtime.device()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `python -m coursepkg.bench` on {results['date']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"device {m['device']}, Python {m['python']}.",
        "",
        f"Measured float32 matrix-multiply rate (2048^3): **{results['matmul_gflops']:.1f} GFLOP/s**.",
        "",
        "## Training throughput: our loop vs the DataLoader idiom",
        "",
        "Our loop is `coursepkg.train.fit` (data on the device, shuffled index batches, one host sync per epoch).",
        "The idiom is a `DataLoader` (batch as given, shuffled, no workers) over a per-example `Dataset` that",
        "converts one uint8 image at a time through PIL like torchvision's `ToTensor`, with `loss.item()` per batch.",
        f"Each loop trains one epoch of {results['throughput'][0]['examples']:,} MNIST images after a warm-up;",
        "times are scaled to a 60,000-image epoch. The floor is the model's training FLOPs per epoch divided by",
        "the measured matrix-multiply rate.",
        "",
        "| model | batch | ours (ex/s) | DataLoader (ex/s) | ratio | ours s/epoch | DataLoader s/epoch | floor s/epoch"
        " | ours % of floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["throughput"]:
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['ours_examples_per_second']:,.0f} | "
            f"{r['dataloader_examples_per_second']:,.0f} | {r['speedup']:.2f}x | "
            f"{r['ours_seconds_per_60k_epoch']:.2f} | {r['dataloader_seconds_per_60k_epoch']:.2f} | "
            f"{r['floor_seconds_per_60k_epoch']:.2f} | {100 * r['ours_fraction_of_floor']:.0f}% |"
        )
    if results.get("quality"):
        lines += [
            "",
            "## Quality per unit of time (VAE 784-400-20, batch 128, our loop)",
            "",
            "| epochs | seconds | test -ELBO (nats, 2,000 test images) |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {q['epoch']} | {q['seconds']:.1f} | {q['test_negative_elbo']:.2f} |" for q in results["quality"]]
    if results.get("engine"):
        e = results["engine"]
        lines += [
            "",
            "## Chapter 3: hand-written backward pass and engine vs torch.autograd",
            "",
            f"Network: {e['network']}.",
            "",
            "| method | time per gradient step |",
            "|---|---:|",
            f"| hand-written backward (`two_layer_backward`) | {1e6 * e['hand_written_backward_s']:.0f} µs |",
        ]
        if e.get("engine_s") is not None:
            lines.append(f"| the chapter's engine | {1e6 * e['engine_s']:.0f} µs |")
        lines.append(f"| torch.autograd | {1e6 * e['torch_autograd_s']:.0f} µs |")
    if results.get("chapters"):
        lines += [
            "",
            "## Chapters (quick profile, one fresh kernel each)",
            "",
            "| chapter | execution time | peak resident memory of the kernel |",
            "|---|---:|---:|",
        ]
        for c in results["chapters"]:
            if "error" in c:
                lines.append(f"| {c['chapter']} | failed | |")
            else:
                lines.append(f"| {c['chapter']} | {c['seconds']:.1f} s | {c['peak_rss_mib']:.0f} MiB |")
        total = sum(c.get("seconds", 0.0) for c in results["chapters"])
        lines += ["", f"All chapters together: {total:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursepkg.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--examples", type=int, default=20_000, help="images per timed epoch")
    parser.add_argument("--quality-seconds", type=float, default=60.0)
    parser.add_argument("--skip-chapters", action="store_true")
    parser.add_argument("--execute-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        _execute_one(args.execute_one)
        return 0
    device = runtime.device()
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    print(f"benchmarking on {results['machine']}", flush=True)
    rate = matmul_rate(device=device)
    results["matmul_gflops"] = rate / 1e9
    print(f"matmul: {rate / 1e9:.1f} GFLOP/s", flush=True)
    results["throughput"] = throughput(args.examples, (128, 512), rate, device)
    results["quality"] = quality_per_time(args.quality_seconds, device)
    try:
        results["engine"] = engine_vs_autograd()
    except (ImportError, AttributeError) as error:
        print(f"engine comparison skipped: {error}")
    if not args.skip_chapters:
        chapters = sorted(p for p in (ROOT / "book").glob("[0-9][0-9]_*.md"))
        results["chapters"] = chapter_runs([ROOT / "book" / "setup.md", *chapters])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "REPORT.md").write_text(report_markdown(results))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
