"""The data loader: IDX parsing, the offline copies, and downloads from a local HTTP server.

The download tests serve small IDX files made here from a server on 127.0.0.1 whose behaviour each test
chooses (missing file, corrupt body, truncated body, connection cut mid-way), and check that every run ends
in verified data or a clear error, never in a bad cached file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from coursepkg import data

SHARED = Path(os.environ.get("COURSEPKG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="offline MNIST copy not available")


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parse_idx_round_trips_every_type(dtype, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 6, size=rng.integers(1, 4)))
    array = (rng.standard_normal(shape) * 50).astype(dtype)
    parsed = data.parse_idx(idx_bytes(array))
    assert parsed.shape == array.shape and parsed.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(parsed, array)


def test_read_idx_reads_plain_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "plain").write_bytes(idx_bytes(array))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "plain"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "packed.gz"), array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "magic"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "type code"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "truncated or corrupt"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "truncated or corrupt"),
    ],
)
def test_parse_idx_rejects_malformed_files(content, message):
    with pytest.raises(data.DataIntegrityError, match=message):
        data.parse_idx(content, "broken")


def test_read_idx_rejects_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((10, 10), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(data.DataIntegrityError, match="gzip"):
        data.read_idx(tmp_path / "cut.gz")


def test_read_idx_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        data.read_idx(tmp_path / "absent")


# ------------------------------------------------------------------------------------------ offline copies


@needs_shared
def test_mnist_from_the_offline_copy(monkeypatch):
    monkeypatch.setenv("COURSEPKG_DATA", str(SHARED))
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    # The well-known training statistics and label counts of MNIST.
    assert train.images.mean().item() == pytest.approx(0.1307, abs=5e-5)
    assert train.images.std().item() == pytest.approx(0.3081, abs=5e-5)
    counts = torch.bincount(train.labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(test.labels, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.load_mnist("test", flatten=False).images.shape == (10_000, 28, 28)


@needs_shared
def test_fashion_mnist_from_the_offline_copy(monkeypatch):
    monkeypatch.setenv("COURSEPKG_DATA", str(SHARED))
    train, test = data.load_fashion_mnist("train"), data.load_fashion_mnist("test")
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert torch.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    assert len(data.FASHION_MNIST_CLASSES) == 10


def test_unknown_split_is_named():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_mnist("validation")


def test_corrupt_offline_copy_is_reported_and_not_used(tmp_path, monkeypatch):
    spec = data.DatasetSpec("toy", ("http://127.0.0.1:9/",), {"f": hashlib.sha256(b"good").hexdigest()})
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "f").write_bytes(b"evil")
    monkeypatch.setenv("COURSEPKG_DATA", str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="sha256"):
        data.fetch(spec, "f")


# --------------------------------------------------------------------------------------------- downloads


class Mirror:
    """A local HTTP server; ``behaviour[path]`` is one of "ok", "missing", "corrupt", "truncated", "cut"."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append(self.path)
                behaviour = mirror.behaviour.get(self.path.split("/")[1], "ok")
                body = mirror.files.get(name)
                if body is None or behaviour == "missing":
                    self.send_error(404)
                    return
                if behaviour == "corrupt":
                    body = gzip.compress(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"evil")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                elif behaviour == "cut":
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror_setup(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    contents = {"train-images-idx3-ubyte": idx_bytes(images), "train-labels-idx1-ubyte": idx_bytes(labels)}
    mirror = Mirror({f"{name}.gz": gzip.compress(content) for name, content in contents.items()})
    spec = data.DatasetSpec(
        "toy",
        (mirror.url("first"), mirror.url("second")),
        {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()},
    )
    monkeypatch.delenv("COURSEPKG_DATA", raising=False)
    monkeypatch.setenv("COURSEPKG_CACHE", str(tmp_path / "cache"))
    yield mirror, spec, contents, images, labels, tmp_path / "cache" / "toy"
    mirror.close()


def _cached_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_caches(mirror_setup):
    mirror, spec, contents, images, _, cache = mirror_setup
    content = data.fetch(spec, "train-images-idx3-ubyte")
    assert content == contents["train-images-idx3-ubyte"]
    np.testing.assert_array_equal(data.parse_idx(content), images)
    assert _cached_files(cache) == ["train-images-idx3-ubyte.gz"]
    served = len(mirror.requests)
    assert data.fetch(spec, "train-images-idx3-ubyte") == content  # from the cache, no new request
    assert len(mirror.requests) == served


def test_download_falls_back_to_the_second_mirror(mirror_setup):
    mirror, spec, contents, *_, cache = mirror_setup
    mirror.behaviour["first"] = "missing"
    assert data.fetch(spec, "train-labels-idx1-ubyte") == contents["train-labels-idx1-ubyte"]
    assert [r.split("/")[1] for r in mirror.requests] == ["first", "second"]
    assert _cached_files(cache) == ["train-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("failure", ["corrupt", "truncated", "cut"])
def test_a_bad_first_mirror_is_never_cached(mirror_setup, failure):
    mirror, spec, contents, *_, cache = mirror_setup
    mirror.behaviour["first"] = failure
    assert data.fetch(spec, "train-images-idx3-ubyte") == contents["train-images-idx3-ubyte"]
    assert _cached_files(cache) == ["train-images-idx3-ubyte.gz"]
    assert data.read_idx(cache / "train-images-idx3-ubyte.gz").shape == (7, 28, 28)


@pytest.mark.parametrize("failure", ["corrupt", "truncated", "cut", "missing"])
def test_every_mirror_failing_is_a_clear_error_and_leaves_nothing(mirror_setup, failure):
    mirror, spec, *_, cache = mirror_setup
    mirror.behaviour["first"] = mirror.behaviour["second"] = failure
    with pytest.raises(data.DownloadError, match="COURSEPKG_DATA") as raised:
        data.fetch(spec, "train-images-idx3-ubyte")
    assert "first" in str(raised.value) and "second" in str(raised.value)
    assert _cached_files(cache) == []  # no partial or temporary file either


def test_corrupt_cached_file_is_replaced(mirror_setup):
    _, spec, contents, *_, cache = mirror_setup
    cache.mkdir(parents=True)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"tampered"))
    with pytest.warns(UserWarning, match="corrupt cached file"):
        assert data.fetch(spec, "train-labels-idx1-ubyte") == contents["train-labels-idx1-ubyte"]
    assert data.read_idx(cache / "train-labels-idx1-ubyte.gz").shape == (7,)


def test_unwritable_cache_still_gives_verified_data(mirror_setup, monkeypatch, tmp_path):
    _, spec, contents, *_ = mirror_setup
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("COURSEPKG_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="could not write the cache"):
        assert data.fetch(spec, "train-images-idx3-ubyte") == contents["train-images-idx3-ubyte"]
    assert blocker.read_text().startswith("a file")


def test_interrupted_write_leaves_no_file(mirror_setup, monkeypatch):
    _, spec, *_, cache = mirror_setup
    real_fsync = os.fsync

    def interrupted(fd):
        real_fsync(fd)
        raise KeyboardInterrupt  # the user stops the run while the file is being written

    monkeypatch.setattr(data.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.fetch(spec, "train-images-idx3-ubyte")
    assert _cached_files(cache) == []


def test_loader_end_to_end_from_the_mirror(mirror_setup, monkeypatch):
    _, spec, _, images, labels, _ = mirror_setup
    monkeypatch.setitem(data.DATASETS, "toy", spec)
    monkeypatch.setitem(data.SPLITS, "train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"))
    data._load_arrays.cache_clear()
    loaded = data._load("toy", "train", flatten=True)
    data._load_arrays.cache_clear()
    assert loaded.images.shape == (7, 784) and loaded.images.dtype == torch.float32
    torch.testing.assert_close(loaded.images, torch.from_numpy(images.reshape(7, -1) / 255.0).float())
    assert loaded.labels.tolist() == labels.astype(int).tolist()


# --------------------------------------------------------------------------------------------- binarize


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binarize_is_bernoulli_with_the_pixel_as_probability(seed):
    generator = torch.Generator().manual_seed(seed)
    probabilities = torch.rand(50, generator=generator)
    draws = torch.stack([data.binarize(probabilities, generator=generator) for _ in range(4000)])
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    # Each pixel's frequency is within 5 standard errors of its probability.
    standard_error = (probabilities * (1 - probabilities) / 4000).sqrt().clamp_min(1e-3)
    assert ((draws.mean(0) - probabilities).abs() <= 5 * standard_error).all()


def test_binarize_keeps_black_and_white_pixels():
    x = torch.tensor([[0.0, 1.0] * 500], dtype=torch.float64)
    for seed in range(5):
        drawn = data.binarize(x, generator=torch.Generator().manual_seed(seed))
        assert drawn.dtype == torch.float64 and torch.equal(drawn, x)


def test_binarize_is_reproducible_and_validated():
    x = torch.rand(10, 784)
    a = data.binarize(x, generator=torch.Generator().manual_seed(3))
    b = data.binarize(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize(x * 2)
    with pytest.raises(TypeError, match="floating-point"):
        data.binarize(torch.ones(3, dtype=torch.int64))


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_moves_each_image_as_scipy_does(max_shift, device):
    """Each output is its image moved by whole pixels (scipy.ndimage.shift, zeros shifted in) by at most
    max_shift each way, drawn per image, every shift drawn; a seeded generator repeats the draws."""
    from scipy import ndimage

    side = 6
    images = torch.rand(400, side * side, generator=torch.Generator().manual_seed(max_shift)).to(device)
    shifted = data.random_shift(images, max_shift, torch.Generator().manual_seed(0), side=side)
    again = data.random_shift(images, max_shift, torch.Generator().manual_seed(0), side=side)
    assert shifted.device == images.device and torch.equal(shifted, again)
    moves = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]
    seen = set()
    for image, output in zip(images.cpu().numpy(), shifted.cpu().numpy(), strict=True):
        square = image.reshape(side, side)
        matches = [m for m in moves if np.array_equal(ndimage.shift(square, m, order=0, cval=0.0).ravel(), output)]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert seen == set(moves)


def test_random_shift_by_zero_is_the_identity_and_bad_input_is_named():
    images = torch.rand(5, 784)
    assert torch.equal(data.random_shift(images, 0), images)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 784\)"):
        data.random_shift(torch.rand(5, 100), 1)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        data.random_shift(images, -1)
    with pytest.raises(TypeError, match="max_shift must be an integer"):
        data.random_shift(images, 1.5)
