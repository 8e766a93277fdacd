"""Checks of the arguments that the course's functions take: one rule for each kind of argument.

Every public function of ``coursepkg`` validates what it is given with these helpers, so that bad input gets the
same kind of message everywhere: the argument's name, what was expected, and what came instead. The module
imports only NumPy; it never imports torch itself (a NumPy chapter that validates its arrays does not load torch),
and recognises tensors only when the caller's code has already imported torch.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

__all__ = [
    "array",
    "check_generator",
    "checks_values",
    "finite",
    "integer",
    "is_tensor",
    "number",
    "positive",
    "probability",
    "same_shape",
    "tensor",
    "within",
]


def _type_name(value) -> str:
    return type(value).__name__


def is_tensor(value) -> bool:
    """True when ``value`` is a torch tensor (False, without importing torch, when torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(value)


def integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int``: a Python or NumPy integer (never a bool, a float or a tensor) in the bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_type_name(value)} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
) -> float:
    """``value`` as a finite ``float`` (a Python or NumPy real, never a bool) in ``[minimum, maximum]``.

    With ``exclusive=True`` the bounds themselves are excluded: ``number(p, "p", minimum=0, maximum=1,
    exclusive=True)`` accepts the open interval (0, 1).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    low_bad = minimum is not None and (value <= minimum if exclusive else value < minimum)
    high_bad = maximum is not None and (value >= maximum if exclusive else value > maximum)
    if low_bad or high_bad:
        left, right = ("(", ")") if exclusive else ("[", "]")
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value:g}")
    return value


def positive(value, name: str) -> float:
    """``value`` as a finite ``float`` > 0 (a learning rate, a standard deviation, a tolerance...)."""
    return number(value, name, minimum=0.0, exclusive=True)


def probability(value, name: str, *, open_interval: bool = False) -> float:
    """``value`` as a ``float`` in [0, 1] (or in (0, 1) with ``open_interval=True``)."""
    return number(value, name, minimum=0.0, maximum=1.0, exclusive=open_interval)


def array(value, name: str, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 NumPy array with ``ndim`` dimensions (one of them, for a tuple) and, unless
    ``finite=False``, only finite entries; the error names ``name`` and the first bad index."""
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        result = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers, got {_type_name(value)}") from error
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and result.ndim not in allowed:
        wanted = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{name} must have {wanted} dimension(s), got shape {result.shape}")
    if finite and not np.all(np.isfinite(result)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(result))[0])
        raise ValueError(f"{name} must be finite, but has {result[bad]} at index {list(bad)}")
    return result


def tensor(value, name: str, *, ndim: int | tuple[int, ...] | None = None, floating: bool = True):
    """``value`` itself, checked to be a torch tensor with ``ndim`` dimensions (one of them, for a tuple) and,
    unless ``floating=False``, a floating-point dtype. It is never copied or moved."""
    if not is_tensor(value):
        raise TypeError(f"{name} must be a torch tensor, got {_type_name(value)}")
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and value.ndim not in allowed:
        wanted = " or ".join(f"{n}-D" for n in allowed)
        raise ValueError(f"{name} must be {wanted}, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def same_shape(a, b, names: tuple[str, str]) -> None:
    """Raise a ``ValueError`` naming both arguments when ``a`` and ``b`` differ in shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_generator(generator, name: str = "generator"):
    """``generator`` itself when it is ``None`` or a ``torch.Generator``; otherwise a ``TypeError``.

    The course's rule for generators and devices: random numbers are drawn on the generator's own device and
    then moved to the data's device (:func:`coursepkg.runtime.randn`), so a seeded CPU generator gives the same
    draws, and so the same numbers, whether the model runs on the CPU or on a GPU.
    """
    torch = sys.modules.get("torch")
    if generator is not None and (torch is None or not isinstance(generator, torch.Generator)):
        raise TypeError(f"{name} must be a torch.Generator or None, got {_type_name(generator)}")
    return generator


def checks_values(value) -> bool:
    """True when a check of ``value``'s entries (finite, in a range) should run: for NumPy data and CPU tensors.

    The course's rule for value checks: reading a tensor's entries back to the host makes the host wait for every
    kernel queued on an accelerator, so a value check inside a training step would stall a GPU at every step.
    Value checks therefore run on the CPU only (where they cost one pass over the data); shapes and dtypes, which
    the host knows without waiting, are checked on every device.
    """
    return not is_tensor(value) or value.device.type == "cpu"


def finite(value, name: str) -> None:
    """Raise a ``ValueError`` naming ``name`` when the tensor ``value`` has a NaN or an infinity (on the CPU only:
    see :func:`checks_values`)."""
    if checks_values(value) and not bool(value.isfinite().all()):
        raise ValueError(f"{name} has non-finite entries (NaN or infinity)")


def within(value, name: str, low: float, high: float, *, open_interval: bool = False, what: str = "") -> None:
    """Raise a ``ValueError`` naming ``name`` when an entry of the tensor ``value`` lies outside [low, high] (or
    (low, high) with ``open_interval=True``; NaN is outside) -- on the CPU only (see :func:`checks_values`).

    ``what`` says what the entries are (``"activations (e.g. sigmoid units)"``) for the message.
    """
    if not checks_values(value) or value.numel() == 0:
        return
    inside = (value > low) & (value < high) if open_interval else (value >= low) & (value <= high)
    if not bool(inside.all()):
        left, right = ("(", ")") if open_interval else ("[", "]")
        found = value.detach().double()
        about = f" ({what})" if what else ""
        raise ValueError(
            f"{name}{about} must lie in {left}{low:g}, {high:g}{right}, got values in "
            f"[{float(found.min()):g}, {float(found.max()):g}]" + (" and NaN" if bool(found.isnan().any()) else "")
        )
