"""The one training loop every chapter uses.

The whole dataset is moved to the device once, as tensors, and each epoch draws a shuffled permutation of
indices and slices mini-batches out of it: no per-example Python work and no ``DataLoader`` workers. Losses
are summed on the device and read back once per epoch, so the loop never waits on the GPU inside an epoch.
A checkpoint written (atomically) at the end of every epoch lets a run cut off mid-way, say by a Colab
disconnect, resume and finish with exactly the weights an uninterrupted run would have had.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import runtime, validation
from .files import write_atomically

__all__ = ["History", "TrainingDiverged", "default_optimizer", "evaluate", "fit"]

LossFunction = Callable[..., torch.Tensor]


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class History:
    """What a call to :func:`fit` did, epoch by epoch (losses are means over examples)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: str = "not started"

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict:
        return asdict(self)


def _as_tensors(data, name: str) -> tuple[torch.Tensor, ...]:
    tensors = (data,) if torch.is_tensor(data) else tuple(data)
    if not tensors or not all(torch.is_tensor(t) for t in tensors):
        raise TypeError(f"{name} must be a tensor or a tuple of tensors, got {type(data).__name__}")
    sizes = {t.shape[0] for t in tensors}
    if len(sizes) != 1:
        raise ValueError(f"{name}: all tensors must have the same first dimension, got sizes {sorted(sizes)}")
    if sizes == {0}:
        raise ValueError(f"{name} is empty")
    return tensors


def _batches(n: int, batch_size: int, order: torch.Tensor | None):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield (order[start:stop] if order is not None else slice(start, stop)), stop - start


def evaluate(
    model: torch.nn.Module,
    loss_fn: LossFunction,
    data,
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> float:
    """The mean of ``loss_fn(model, *batch)`` over ``data``, in evaluation mode and without autograd."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    tensors = tuple(t.to(device) for t in _as_tensors(data, "data"))
    n = tensors[0].shape[0]
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    with torch.inference_mode():
        for index, size in _batches(n, batch_size, None):
            total += loss_fn(model, *(t[index] for t in tensors)).double() * size
    model.train(was_training)
    return total.item() / n


PRECISIONS = ("float32", "bfloat16")


def default_optimizer(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults apart from ``lr``, in its fused form where the device has one.

    The fused kernel updates all parameters in one pass instead of a loop of small operations per parameter:
    on two CPU cores it made the 784-400-20 VAE's training step at batch 128 about a fifth shorter (measured with
    ``python -m coursepkg.bench``'s loops, fused against the loop form). Its arithmetic is Adam's; only the
    rounding of the last bits can differ from the loop form.
    """
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def _autocast(device: torch.device, precision: str):
    """The forward pass's context: bfloat16 autocast, or nothing for float32 (exact, the default)."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _save_checkpoint(path: Path, state: dict) -> None:
    write_atomically(path, lambda file: torch.save(state, file))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    model: torch.nn.Module,
    loss_fn: LossFunction,
    train_data,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    val_data=None,
    device: torch.device | str | None = None,
    seed: int = 0,
    patience: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    max_grad_norm: float | None = None,
    precision: str = "float32",
    callbacks: Sequence[Callable[[int, History], None]] = (),
    description: str = "training",
) -> History:
    """Train ``model`` by mini-batch gradient descent on ``loss_fn(model, *batch)``, a mean over the batch.

    ``train_data`` (and ``val_data``) is a tensor or a tuple of tensors sharing their first dimension, e.g.
    ``(images, labels)``; it is moved to ``device`` once. ``optimizer`` builds the optimizer from the
    parameters (default :func:`default_optimizer`). With ``patience`` set, training stops when the
    validation loss has not improved for that many epochs and the best weights are restored. With
    ``checkpoint`` set, the state after each epoch is written there and an existing checkpoint is resumed
    (``resume=True``), so calling ``fit`` again after an interruption finishes the same run. Each callback is
    called as ``callback(epoch, history)`` after every epoch.

    ``precision="bfloat16"`` computes the loss under ``torch.autocast`` (weights, gradients and optimizer state
    stay float32): faster on hardware with bfloat16 matrix units, though the forward pass then keeps only about
    three significant digits (``bench/REPORT.md`` measures both). The default, ``"float32"``, is exact.

    Raises :class:`TrainingDiverged` when the loss becomes NaN or infinite.
    """
    epochs = validation.integer(epochs, "epochs", minimum=1)
    batch_size = validation.integer(batch_size, "batch_size", minimum=1)
    lr = validation.positive(lr, "lr")
    if patience is not None:
        patience = validation.integer(patience, "patience", minimum=1)
    if max_grad_norm is not None:
        max_grad_norm = validation.positive(max_grad_norm, "max_grad_norm")
    if patience is not None and val_data is None:
        raise ValueError("patience (early stopping) needs val_data")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")

    device = torch.device(device) if device is not None else runtime.device()
    runtime.seed_everything(seed)
    model.to(device)
    train_tensors = tuple(t.to(device) for t in _as_tensors(train_data, "train_data"))
    val_tensors = None if val_data is None else tuple(t.to(device) for t in _as_tensors(val_data, "val_data"))
    n = train_tensors[0].shape[0]

    build_optimizer = optimizer or (lambda params: default_optimizer(params, lr, device))
    opt = build_optimizer(model.parameters())
    shuffler = torch.Generator().manual_seed(seed)  # on the CPU: the same order on every device
    history = History()
    best_loss, best_state, bad_epochs, start_epoch = math.inf, None, 0, 0

    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        shuffler.set_state(state["shuffler"])
        _set_rng_state(state["rng"])
        history = History(**state["history"])
        best_loss, best_state, bad_epochs = state["best_loss"], state["best_state"], state["bad_epochs"]
        start_epoch = history.epochs
        if history.stopped.startswith("early stopping"):  # the run had already finished
            start_epoch = epochs

    bar = tqdm(range(start_epoch, epochs), desc=description, disable=not progress, unit="epoch")
    if not history.stopped.startswith("early stopping"):
        history.stopped = "completed"
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=shuffler).to(device)
        total = torch.zeros((), device=device, dtype=torch.float64)
        for index, size in _batches(n, batch_size, order):
            with _autocast(device, precision):
                loss = loss_fn(model, *(t[index] for t in train_tensors))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
            total += loss.detach().double() * size
        train_loss = total.item() / n  # the only host synchronisation of the epoch
        if not math.isfinite(train_loss):
            current_lr = opt.param_groups[0].get("lr", lr)
            raise TrainingDiverged(
                f"the training loss became {train_loss} in epoch {epoch + 1}: the learning rate "
                f"{current_lr:g} is probably too large; try a smaller one, e.g. lr={current_lr / 10:g}"
            )
        history.train_loss.append(train_loss)
        postfix = {"train": f"{train_loss:.4g}"}
        if val_tensors is not None:
            val_loss = evaluate(model, loss_fn, val_tensors, device=device)
            history.val_loss.append(val_loss)
            postfix["val"] = f"{val_loss:.4g}"
            if val_loss < best_loss:
                best_loss, bad_epochs, history.best_epoch = val_loss, 0, epoch + 1
                if patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
        history.epoch_seconds.append(time.perf_counter() - started)
        bar.set_postfix(postfix)
        stop = patience is not None and bad_epochs >= patience
        if stop:
            history.stopped = f"early stopping after epoch {epoch + 1} (best epoch {history.best_epoch})"
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "shuffler": shuffler.get_state(),
                    "rng": _rng_state(),
                    "history": history.as_dict(),
                    "best_loss": best_loss,
                    "best_state": best_state,
                    "bad_epochs": bad_epochs,
                },
            )
        for callback in callbacks:
            callback(epoch + 1, history)
        if stop:
            break
    bar.close()
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
