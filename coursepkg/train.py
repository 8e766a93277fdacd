"""The one training loop every chapter uses.

The whole dataset is moved to the device once, as tensors, and each epoch draws a shuffled permutation of
indices and slices mini-batches out of it: no per-example Python work and no ``DataLoader`` workers. Losses
are summed on the device and read back once per epoch, so the loop never waits on the GPU inside an epoch.

:func:`fit` is made of parts that can be read and tested on their own: :func:`train_epoch` (one pass over the
data), :class:`EarlyStopping` (when to stop, and the best weights), and the checkpoint (:func:`fingerprint`,
:func:`save_checkpoint`, :func:`load_checkpoint`): written atomically at the end of every epoch, it lets a run cut
off mid-way, say by a Colab disconnect, resume and finish with exactly the weights an uninterrupted run would have
had, and it is resumed only by the run that wrote it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import runtime, validation
from .files import write_atomically

__all__ = [
    "EarlyStopping",
    "History",
    "TrainingDiverged",
    "TrainingState",
    "default_optimizer",
    "evaluate",
    "fingerprint",
    "fit",
    "inference",
    "load_checkpoint",
    "save_checkpoint",
    "train_epoch",
]

LossFunction = Callable[..., torch.Tensor]
PRECISIONS = ("float32", "bfloat16")


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


@dataclass
class TrainingState:
    """What every callback of :func:`fit` receives after each epoch: the model, its optimizer, the learning-rate
    scheduler (or None), the history so far and the number of epochs done."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int
    scheduler: object | None = None


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


# ------------------------------------------------------------------------------------------ inference


def inference(
    function: Callable[..., torch.Tensor],
    model: torch.nn.Module,
    data,
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> list[tuple[torch.Tensor, int]]:
    """``function(*batch)`` on every batch of ``data`` (in order), with ``model`` in evaluation mode and without
    autograd, on ``device`` (the model's by default): a list of (output, batch size).

    Each batch is moved to the device on its own, so data larger than the device's memory can be evaluated;
    the model's training mode is restored afterwards, also on an error.
    """
    batch_size = validation.integer(batch_size, "batch_size", minimum=1)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    tensors = _as_tensors(data, "data")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return [
                (function(*(t[index].to(device) for t in tensors)), size)
                for index, size in _batches(tensors[0].shape[0], batch_size, None)
            ]
    finally:
        model.train(was_training)


def evaluate(
    model: torch.nn.Module,
    loss_fn: LossFunction,
    data,
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> float:
    """The mean of ``loss_fn(model, *batch)`` over ``data``, in evaluation mode and without autograd."""
    parts = inference(lambda *batch: loss_fn(model, *batch), model, data, batch_size=batch_size, device=device)
    total = sum(loss.double() * size for loss, size in parts)  # summed on the device, read back once
    return float(total) / sum(size for _, size in parts)


# ------------------------------------------------------------------------------------------- one epoch


def default_optimizer(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults apart from ``lr``, in its fused form where the device has one.

    The fused kernel updates all parameters in one pass instead of a loop of small operations per parameter.
    Its arithmetic is Adam's; only the rounding of the last bits can differ from the loop form.
    """
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def _autocast(device: torch.device, precision: str):
    """The forward pass's context: bfloat16 autocast, or nothing for float32 (exact, the default)."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(
    model: torch.nn.Module,
    loss_fn: LossFunction,
    tensors: tuple[torch.Tensor, ...],
    optimizer: torch.optim.Optimizer,
    order: torch.Tensor,
    batch_size: int,
    *,
    precision: str = "float32",
    max_grad_norm: float | None = None,
) -> float:
    """One pass of mini-batch gradient descent over ``tensors`` in the order ``order``: the mean training loss.

    Each batch's loss is computed (under ``precision``), differentiated and followed by an optimizer step;
    gradients are clipped to ``max_grad_norm`` when given. The losses are summed on the device and read back
    once, at the end: the only host synchronisation of the epoch.
    """
    device = tensors[0].device
    model.train()
    total = torch.zeros((), device=device, dtype=torch.float64)
    for index, size in _batches(tensors[0].shape[0], batch_size, order):
        with _autocast(device, precision):
            loss = loss_fn(model, *(t[index] for t in tensors))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        total += loss.detach().double() * size
    return total.item() / tensors[0].shape[0]


# ------------------------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Tracks the best validation loss; with ``patience`` set, stops once it has not improved for that many
    epochs and keeps a copy of the best weights (restored by :meth:`restore`)."""

    def __init__(self, patience: int | None = None):
        self.patience = patience
        self.best_loss = math.inf
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def update(self, val_loss: float, model: torch.nn.Module, epoch: int, history: History) -> bool:
        """Record epoch ``epoch``'s validation loss; True when training should stop."""
        if val_loss < self.best_loss:
            self.best_loss, self.bad_epochs, history.best_epoch = val_loss, 0, epoch
            if self.patience is not None:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights into ``model`` (nothing without ``patience`` or before any epoch)."""
        if self.patience is not None and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best_loss": self.best_loss, "best_state": self.best_state, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_state, self.bad_epochs = state["best_loss"], state["best_state"], state["bad_epochs"]


# ---------------------------------------------------------------------------------------- checkpoints


def _plain(value):
    """``value`` as basic Python types (what ``torch.load(weights_only=True)`` reads back and ``==`` compares)."""
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _data_hash(tensors: Sequence[torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(f"{t.dtype} {tuple(t.shape)};".encode())
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def fingerprint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Sequence[torch.Tensor],
    *,
    batch_size: int,
    seed: int,
    scheduler=None,
) -> dict:
    """What identifies a training run: the model's class and parameter shapes, the optimizer's class and
    settings, the scheduler's class, the batch size, the seed, the number of examples and a hash of the data.

    A checkpoint stores it and is resumed only by a run with the same fingerprint.
    """
    return {
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": {name: list(p.shape) for name, p in model.state_dict().items()},
        "optimizer": type(optimizer).__name__,
        "optimizer settings": [_plain({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups],
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "batch size": batch_size,
        "seed": seed,
        "examples": int(data[0].shape[0]),
        "data sha256": _data_hash(data),
    }


def _differences(old, new, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
        return found
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(g, dict) for g in old)
    ):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {old!r} in the checkpoint, {new!r} now"]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` (tensors, state dicts and basic types) to ``path`` atomically."""
    write_atomically(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | os.PathLike, expected: dict, device: torch.device) -> dict | None:
    """The checkpoint at ``path`` when it exists and its fingerprint equals ``expected``; otherwise None, with a
    warning that says what differs (the run then starts afresh and overwrites it).

    Loaded with ``weights_only=True``: tensors and basic types only, never arbitrary pickled objects.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 -- an unreadable checkpoint is replaced, never fatal
        warnings.warn(f"checkpoint {path} cannot be read ({error}); starting afresh", stacklevel=3)
        return None
    differences = _differences(state.get("fingerprint"), expected) if isinstance(state, dict) else ["format"]
    if differences:
        warnings.warn(
            f"checkpoint {path} belongs to another run and is not resumed; starting afresh. It differs in: "
            + "; ".join(differences),
            stacklevel=3,
        )
        return None
    return state


# ------------------------------------------------------------------------------------------- the loop


def fit(
    model: torch.nn.Module,
    loss_fn: LossFunction,
    train_data,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
    val_data=None,
    device: torch.device | str | None = None,
    seed: int = 0,
    patience: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    max_grad_norm: float | None = None,
    precision: str = "float32",
    callbacks: Sequence[Callable[[TrainingState], None]] = (),
    description: str = "training",
) -> History:
    """Train ``model`` by mini-batch gradient descent on ``loss_fn(model, *batch)``, a mean over the batch.

    ``train_data`` (and ``val_data``) is a tensor or a tuple of tensors sharing their first dimension, e.g.
    ``(images, labels)``; it is moved to ``device`` once. ``optimizer`` builds the optimizer from the
    parameters (default :func:`default_optimizer`); ``scheduler`` builds a learning-rate scheduler from the
    optimizer (``lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, ...)``), stepped after every epoch
    (``ReduceLROnPlateau`` with the epoch's validation loss, or its training loss without ``val_data``). With
    ``patience`` set, training stops when the validation loss has not improved for that many epochs and the best
    weights are restored (:class:`EarlyStopping`). With ``checkpoint`` set, the state after each epoch is written
    there, and a checkpoint of the same run (the same :func:`fingerprint`) is resumed (``resume=True``), so calling
    ``fit`` again after an interruption finishes the same run; a checkpoint of another run is left unused, with a
    warning that says what differs. Each callback is called as ``callback(state)`` with the
    :class:`TrainingState` after every epoch.

    ``precision="bfloat16"`` computes the loss under ``torch.autocast`` (weights, gradients and optimizer state
    stay float32): faster on hardware with bfloat16 matrix units, though the forward pass then keeps only about
    three significant digits. The default, ``"float32"``, is exact.

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
    schedule = scheduler(opt) if scheduler is not None else None
    shuffler = torch.Generator().manual_seed(seed)  # on the CPU: the same order on every device
    history = History()
    stopping = EarlyStopping(patience)

    if checkpoint is not None:
        expected = fingerprint(model, opt, train_tensors, batch_size=batch_size, seed=seed, scheduler=schedule)
        state = load_checkpoint(checkpoint, expected, device) if resume else None
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if schedule is not None:
                schedule.load_state_dict(state["scheduler"])
            shuffler.set_state(state["shuffler"])
            _set_rng_state(state["rng"])
            history = History(**state["history"])
            stopping.load_state_dict(state["stopping"])

    finished = history.stopped.startswith("early stopping")  # a resumed run that had already stopped
    bar = tqdm(total=epochs, initial=history.epochs, desc=description, disable=not progress, unit="epoch")
    if not finished:
        history.stopped = "completed"
    for epoch in range(history.epochs + 1, epochs + 1) if not finished else ():
        started = time.perf_counter()
        order = torch.randperm(n, generator=shuffler).to(device)
        train_loss = train_epoch(
            model, loss_fn, train_tensors, opt, order, batch_size, precision=precision, max_grad_norm=max_grad_norm
        )
        if not math.isfinite(train_loss):
            current_lr = opt.param_groups[0].get("lr", lr)
            raise TrainingDiverged(
                f"the training loss became {train_loss} in epoch {epoch}: the learning rate "
                f"{current_lr:g} is probably too large; try a smaller one, e.g. lr={current_lr / 10:g}"
            )
        history.train_loss.append(train_loss)
        postfix = {"train": f"{train_loss:.4g}"}
        stop = False
        if val_tensors is not None:
            val_loss = evaluate(model, loss_fn, val_tensors, device=device)
            history.val_loss.append(val_loss)
            postfix["val"] = f"{val_loss:.4g}"
            stop = stopping.update(val_loss, model, epoch, history)
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(history.val_loss[-1] if val_tensors is not None else train_loss)
        elif schedule is not None:
            schedule.step()
        history.epoch_seconds.append(time.perf_counter() - started)
        bar.update()
        bar.set_postfix(postfix)
        if stop:
            history.stopped = f"early stopping after epoch {epoch} (best epoch {history.best_epoch})"
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "fingerprint": expected,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": None if schedule is None else schedule.state_dict(),
                    "shuffler": shuffler.get_state(),
                    "rng": _rng_state(),
                    "history": history.as_dict(),
                    "stopping": stopping.state_dict(),
                },
            )
        for callback in callbacks:
            callback(TrainingState(model, opt, history, epoch, schedule))
        if stop:
            break
    bar.close()
    stopping.restore(model)
    return history
