"""The shared argument checks (coursepkg.validation), the atomic write (coursepkg.files) and the generator rule
(coursepkg.runtime.randn / rand)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from coursepkg import files, runtime, validation


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "3", torch.tensor(3), None])
def test_integer_rejects_what_is_not_an_integer(value):
    with pytest.raises(TypeError, match="n must be an integer"):
        validation.integer(value, "n")


def test_integer_accepts_python_and_numpy_integers_within_bounds():
    assert validation.integer(np.int64(5), "n", minimum=1) == 5
    assert type(validation.integer(np.int32(5), "n")) is int
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        validation.integer(0, "n", minimum=1)
    with pytest.raises(ValueError, match="n must be <= 3, got 4"):
        validation.integer(4, "n", maximum=3)


def test_number_bounds_open_and_closed():
    assert validation.probability(0.0, "p") == 0.0
    with pytest.raises(ValueError, match=r"p must lie in \(0, 1\), got 0"):
        validation.probability(0.0, "p", open_interval=True)
    with pytest.raises(ValueError, match="must be finite"):
        validation.positive(float("inf"), "lr")
    with pytest.raises(ValueError, match=r"lr must lie in \(0, inf\)"):
        validation.positive(-1e-3, "lr")
    with pytest.raises(TypeError, match="lr must be a number, got bool"):
        validation.positive(True, "lr")


def test_array_names_the_first_bad_entry_and_the_dimensions():
    with pytest.raises(ValueError, match=r"X must be finite, but has nan at index \[1, 0\]"):
        validation.array([[1.0, 2.0], [np.nan, 0.0]], "X")
    with pytest.raises(ValueError, match=r"w must have 1 dimension\(s\), got shape \(2, 2\)"):
        validation.array(np.eye(2), "w", ndim=1)
    with pytest.raises(TypeError, match="x must be an array of numbers"):
        validation.array(["a", "b"], "x")
    assert validation.array(torch.ones(3), "x", ndim=(1, 2)).dtype == np.float64


def test_tensor_checks_type_dimensions_and_dtype():
    x = torch.zeros(2, 3)
    assert validation.tensor(x, "x", ndim=2) is x
    with pytest.raises(TypeError, match="x must be a torch tensor, got ndarray"):
        validation.tensor(np.zeros(3), "x")
    with pytest.raises(ValueError, match="x must be 1-D or 3-D, got shape"):
        validation.tensor(x, "x", ndim=(1, 3))
    with pytest.raises(TypeError, match="floating-point"):
        validation.tensor(torch.zeros(2, dtype=torch.long), "x")
    with pytest.raises(ValueError, match=r"x and x_hat must have the same shape, got \(2, 3\) and \(3, 2\)"):
        validation.same_shape(x, x.T, ("x", "x_hat"))


def test_validation_does_not_import_torch():
    code = "import sys, coursepkg.validation as v; v.array([1.0], 'x'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_generator_rule_cpu_generator_gives_the_same_draws_on_any_device():
    like = torch.zeros(1, dtype=torch.float64)
    first = runtime.randn((4, 3), like, torch.Generator().manual_seed(7))
    expected = torch.randn((4, 3), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(first, expected, rtol=0, atol=0)
    uniform = runtime.rand((1000,), like, torch.Generator().manual_seed(1))
    assert uniform.dtype == torch.float64 and 0 <= float(uniform.min()) and float(uniform.max()) < 1
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        runtime.randn((2,), like, 3)


def test_write_atomically_replaces_whole_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "sub" / "result.json"
    files.write_atomically(target, "first")
    files.write_atomically(target, b"second")
    files.write_atomically(target, lambda file: file.write(b"third"))
    assert target.read_bytes() == b"third"

    def fail(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(target, fail)
    assert target.read_bytes() == b"third"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]
    with pytest.raises(TypeError, match="content must be bytes, str or a function"):
        files.write_atomically(target, 3)
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_value_checks_name_the_range_and_what_was_found():
    with pytest.raises(ValueError, match=r"h \(activations\) must lie in \[0, 1\], got values in \[-0.5, 2\]"):
        validation.within(torch.tensor([0.3, -0.5, 2.0]), "h", 0.0, 1.0, what="activations")
    with pytest.raises(ValueError, match=r"rho must lie in \(0, 1\), got values in \[0, 0.5\]"):
        validation.within(torch.tensor([0.0, 0.5]), "rho", 0.0, 1.0, open_interval=True)
    with pytest.raises(ValueError, match="and NaN"):
        validation.within(torch.tensor([0.5, float("nan")]), "p", 0.0, 1.0)
    validation.within(torch.tensor([0.0, 1.0]), "p", 0.0, 1.0)  # the closed interval holds its ends
    with pytest.raises(ValueError, match=r"x has non-finite entries \(NaN or infinity\)"):
        validation.finite(torch.tensor([1.0, float("inf")]), "x")
    validation.finite(torch.ones(3), "x")


def test_value_checks_run_on_the_cpu_only():
    # A tensor off the CPU (here on the "meta" device, which every build has) is never read back to the host:
    # on a GPU such a read would stall every training step. Its shape and dtype are still checked.
    off_host = torch.full((3,), 2.0, device="meta")
    assert validation.checks_values(torch.ones(1)) and validation.checks_values(np.ones(1))
    assert not validation.checks_values(off_host)
    validation.within(off_host, "h", 0.0, 1.0)
    validation.finite(off_host, "h")
    with pytest.raises(ValueError, match="2-D"):
        validation.tensor(off_host, "h", ndim=2)
