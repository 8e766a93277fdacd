"""Randomized checks of graded functions against independent references.

A :class:`Check` is split in three so that the grader can keep the untrusted part in a sandbox:

* ``cases(rng)`` draws random inputs (NumPy arrays and Python scalars only) in the trusted grader process;
* ``call(candidate, case)`` runs the student's function on one case, in the sandboxed process, and returns
  what it produced (arrays, tensors, scalars, or a tuple/dict of them);
* ``expect(case)`` computes the answer with an *independent* reference (torch.autograd, finite differences,
  torch.distributions, a closed form...) in the trusted process, and ``compare(expected, got, case)``
  returns ``None`` when they agree and otherwise a message that tells the student what went wrong.

The sandbox never sees ``expect``; only NumPy arrays cross between the two processes.

This module never imports torch at import time, so that grading a NumPy chapter does not load it: it recognises
tensors only when torch is already loaded, and :func:`call_with_tensors` imports it when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

Case = dict[str, Any]
Outputs = dict[str, np.ndarray]


class CheckError(Exception):
    """Raised inside ``call`` adapters when a submission's output cannot be used at all."""


def to_numpy(value, what: str = "output") -> np.ndarray:
    """A numeric NumPy array from a tensor, array or scalar; anything else raises :class:`CheckError`."""
    torch = sys.modules.get("torch")  # a tensor exists only where torch is loaded
    if torch is not None and torch.is_tensor(value):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise CheckError(f"{what} is a NumPy array of Python objects; expected numbers")
        return value
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray([to_numpy(v, what) for v in value])
        except (ValueError, CheckError) as error:
            raise CheckError(f"{what} is a ragged or non-numeric list: {error}") from error
        return array
    raise CheckError(f"{what} is a {type(value).__name__}; expected an array, tensor or number")


def normalize(value) -> Outputs:
    """Flatten what a function returned into ``{key: array}``: one key ``value``, ``0``, ``1``... for a
    tuple, or the dict's own keys."""
    if isinstance(value, dict):
        return {str(k): to_numpy(v, f"output[{k!r}]") for k, v in value.items()}
    if isinstance(value, tuple):
        return {str(i): to_numpy(v, f"output[{i}]") for i, v in enumerate(value)}
    return {"value": to_numpy(value)}


def describe_case(case: Case) -> str:
    """A short description of a case's inputs: shapes of arrays, values of scalars."""
    parts = []
    for name, value in case.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            parts.append(f"{name}: array of shape {value.shape}")
        else:
            parts.append(f"{name}={np.asarray(value).item()!r}")
    return ", ".join(parts)


def _label(key: str) -> str:
    return "the output" if key == "value" else f"output {key!r}"


def allclose(rtol: float = 1e-6, atol: float = 1e-8) -> Callable[[Outputs, Outputs, Case], str | None]:
    """A comparator: same keys, same shapes, all entries finite and close (``numpy.allclose`` semantics).

    It judges each output on its own, so the grader gives credit per output (``compare.per_output``)."""

    def compare(expected: Outputs, got: Outputs, case: Case) -> str | None:
        if set(expected) != set(got):
            if set(expected) == {"value"}:
                return f"expected one array, got {len(got)} outputs ({sorted(got)})"
            return f"expected outputs {sorted(expected)}, got {sorted(got)}"
        for key, want in expected.items():
            have = got[key]
            if have.shape != want.shape:
                return f"{_label(key)} has shape {have.shape}, expected {want.shape}"
            if not np.issubdtype(have.dtype, np.number) and have.dtype != np.bool_:
                return f"{_label(key)} has dtype {have.dtype}, expected numbers"
            have64, want64 = have.astype(np.float64), want.astype(np.float64)
            if not np.all(np.isfinite(have64)) and np.all(np.isfinite(want64)):
                index = tuple(int(i) for i in np.argwhere(~np.isfinite(have64))[0])
                return f"{_label(key)} has a non-finite entry {have64[index]} at index {list(index)}"
            close = np.isclose(have64, want64, rtol=rtol, atol=atol, equal_nan=True)
            if not np.all(close):
                error = np.where(close, 0.0, np.abs(have64 - want64))
                index = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
                where = f" at index {[int(i) for i in index]}" if index else ""
                return (
                    f"{_label(key)}{where} is {have64[index]:.6g}, expected {want64[index]:.6g} "
                    f"({int((~close).sum())} of {close.size} entries differ; rtol={rtol:g}, atol={atol:g})"
                )
        return None

    compare.per_output = True
    return compare


def call_with_kwargs(candidate: Callable, case: Case):
    """The default ``call``: ``candidate(**case)`` with the arrays as NumPy arrays."""
    return candidate(**case)


def call_with_tensors(dtype: torch.dtype | None = None) -> Callable[[Callable, Case], Any]:
    """A ``call`` that turns every floating array of the case into a torch tensor of ``dtype`` (``None``:
    float64; integer arrays into int64 tensors) before calling ``candidate(**case)``."""

    def call(candidate: Callable, case: Case):
        import torch

        converted = {}
        for name, value in case.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                tensor = torch.from_numpy(np.ascontiguousarray(value))
                floating = torch.float64 if dtype is None else dtype
                converted[name] = tensor.to(floating) if tensor.is_floating_point() else tensor.long()
            else:
                converted[name] = value
        return candidate(**converted)

    return call


@dataclass(frozen=True)
class Check:
    """A randomized check of the graded function ``function`` (see the module docstring)."""

    function: Callable
    cases: Callable[[np.random.Generator], list[Case]]
    expect: Callable[[Case], Any]
    call: Callable[[Callable, Case], Any] = call_with_kwargs
    compare: Callable[[Outputs, Outputs, Case], str | None] = field(default_factory=allclose)
    points: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    timeout: float = 60.0
    description: str = ""
    families: tuple[str, ...] = ()  # names of the kinds of case, in the order ``cases`` draws them
    smoke_seed: int = 100  # the public seed of the visible smoke case (the first case ``check()`` runs)

    @property
    def name(self) -> str:
        """The graded function's name: what a submission must define."""
        return self.function.__name__

    def draw_cases(self, seeds: tuple[int, ...] | None = None) -> list[Case]:
        """Every case for every seed; each seed gives its own ``numpy.random.Generator``."""
        drawn = []
        for seed in seeds if seeds is not None else self.seeds:
            drawn.extend(self.cases(np.random.default_rng(seed)))
        if not drawn:
            raise RuntimeError(f"check {self.name!r} drew no cases")
        return drawn

    def family_name(self, family: int) -> str:
        """The name of the ``family``-th kind of case."""
        return self.families[family] if family < len(self.families) else f"case kind {family + 1}"

    def drawn(self, seeds: tuple[int, ...] | None = None) -> list[tuple[int, Case]]:
        """``(family, case)`` for every case of every seed: the family is the case's position in what ``cases``
        draws for one seed."""
        drawn = []
        for seed in seeds if seeds is not None else self.seeds:
            drawn.extend(enumerate(self.cases(np.random.default_rng(seed))))
        if not drawn:
            raise RuntimeError(f"check {self.name!r} drew no cases")
        return drawn

    def verdicts(self, case_index: int, case: Case, got: Outputs | str) -> dict[str, str | None]:
        """``{part: failure message or None}`` for one case: one part per output for a comparator that judges
        outputs on their own (``allclose``), else one part, ``"output"``."""
        expected = normalize(self.expect(case))
        parts = sorted(expected) if getattr(self.compare, "per_output", False) and len(expected) > 1 else ["output"]
        prefix = f"case {case_index + 1} ({describe_case(case)}): "
        if isinstance(got, str):
            return dict.fromkeys(parts, prefix + got)
        if parts == ["output"]:
            return {"output": _with_prefix(prefix, self.compare(expected, got, case))}
        verdicts = {}
        for part in parts:
            if part not in got:
                verdicts[part] = prefix + f"output {part!r} is missing (got {sorted(got)})"
            else:
                verdicts[part] = _with_prefix(prefix, self.compare({part: expected[part]}, {part: got[part]}, case))
        unexpected = sorted(set(got) - set(expected))
        if unexpected:  # outputs nobody asked for make every part wrong: the function returns the wrong thing
            verdicts = dict.fromkeys(parts, prefix + f"expected outputs {parts}, got {sorted(got)}")
        return verdicts

    def judge(self, case_index: int, case: Case, got: Outputs | str) -> str | None:
        """Compare one case's outputs (or the error string the sandbox reported) with the reference."""
        prefix = f"case {case_index + 1} ({describe_case(case)}): "
        if isinstance(got, str):
            return prefix + got
        return _with_prefix(prefix, self.compare(normalize(self.expect(case)), got, case))


def _with_prefix(prefix: str, message: str | None) -> str | None:
    return None if message is None else prefix + message


def run_in_process(check: Check, candidate: Callable, seeds: tuple[int, ...] | None = None) -> list[str]:
    """Run ``check`` on ``candidate`` in this process; return the failure messages (empty when it passes)."""
    failures = []
    for i, case in enumerate(check.draw_cases(seeds)):
        try:
            got: Outputs | str = normalize(check.call(candidate, case))
        except NotImplementedError as error:
            return [f"{check.name} is not implemented yet: {error}"]
        except Exception as error:  # the student's code may raise anything; report it
            got = f"raised {type(error).__name__}: {error}"
        message = check.judge(i, case, got)
        if message is not None:
            failures.append(message)
            break  # the first failing case is the most useful message
    return failures
