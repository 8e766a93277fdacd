"""MNIST and Fashion-MNIST: IDX parsing, verified downloads, an atomic cache.

``load_mnist("train")`` looks for the four IDX files, in this order,

1. in ``$COURSEPKG_DATA/<dataset>/`` (CI points it at a verified offline copy),
2. in the user cache (``$COURSEPKG_CACHE``, else ``$XDG_CACHE_HOME/coursepkg``, else ``~/.cache/coursepkg``),
3. on the public mirrors, trying each in turn,

and checks the sha256 of the *decompressed* bytes every time it reads a file. A file whose content does not
match is reported and never used; a download is written to the cache only after it has been verified, and
through a temporary file renamed into place, so an interrupted run never leaves a partial file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import runtime, validation
from .files import write_atomically

__all__ = [
    "DATASETS",
    "DataIntegrityError",
    "DatasetSpec",
    "DownloadError",
    "ImageDataset",
    "binarize",
    "cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "parse_idx",
    "read_idx",
]

# IDX type codes (third byte of the magic number) and the big-endian dtype each one stores.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataIntegrityError(RuntimeError):
    """A data file is malformed, truncated or does not have the expected sha256."""


class DownloadError(RuntimeError):
    """No mirror delivered a verified copy of a file."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives: its folder name, its mirrors (tried in order) and the sha256 of each file.

    ``sha256`` maps the IDX file name (without ``.gz``) to the hex digest of its decompressed content.
    """

    name: str
    mirrors: tuple[str, ...]
    sha256: dict[str, str]


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
    ),
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


class ImageDataset(NamedTuple):
    """Images as float32 in [0, 1], shape (N, 784) (or (N, 28, 28) with ``flatten=False``), int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor


# --------------------------------------------------------------------------------------------------- IDX


def parse_idx(content: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into a NumPy array of its native dtype and shape.

    The magic number is two zero bytes, a type code (``IDX_DTYPES``) and the number of dimensions; then one
    big-endian int32 per dimension; then the data. Anything else raises :class:`DataIntegrityError`.
    """
    if len(content) < 4:
        raise DataIntegrityError(f"{source}: {len(content)} bytes is too short for an IDX header")
    if content[0] != 0 or content[1] != 0:
        raise DataIntegrityError(f"{source}: bad IDX magic number {content[:4].hex()} (expected it to start with 0000)")
    type_code, ndim = content[2], content[3]
    if type_code not in IDX_DTYPES:
        raise DataIntegrityError(
            f"{source}: unknown IDX type code 0x{type_code:02x}; "
            f"expected one of {[f'0x{code:02x}' for code in IDX_DTYPES]}"
        )
    if ndim == 0:
        raise DataIntegrityError(f"{source}: IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataIntegrityError(f"{source}: truncated IDX header ({len(content)} bytes, need {header_size})")
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">i4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        raise DataIntegrityError(
            f"{source}: IDX header declares shape {shape} ({expected} data bytes) but the file holds "
            f"{actual} data bytes (truncated or corrupt)"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _decompress(raw: bytes, source: str) -> bytes:
    """Return the content of a file that may be gzip-compressed (detected by its magic bytes)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataIntegrityError(f"{source}: corrupt or truncated gzip stream ({error})") from error


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a NumPy array; see :func:`parse_idx` for the checks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: no file at {path}")
    return parse_idx(_decompress(path.read_bytes(), str(path)), str(path))


# ------------------------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The user cache: ``$COURSEPKG_CACHE``, else ``$XDG_CACHE_HOME/coursepkg``, else ``~/.cache/coursepkg``."""
    if os.environ.get("COURSEPKG_CACHE"):
        return Path(os.environ["COURSEPKG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "coursepkg"


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _find_local(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _verified_content(path: Path, expected_sha256: str) -> bytes:
    """The decompressed content of ``path``, or :class:`DataIntegrityError` if it does not match."""
    content = _decompress(path.read_bytes(), str(path))
    digest = _sha256(content)
    if digest != expected_sha256:
        raise DataIntegrityError(f"{path}: sha256 of the decompressed content is {digest}, expected {expected_sha256}")
    return content


def _download(url: str, timeout: float) -> bytes:
    """GET ``url`` completely, or raise: a body shorter than its Content-Length counts as a failure."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "coursepkg"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        chunks, received = [], 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False) as bar:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DataIntegrityError(f"{url}: received {received} of {total} bytes (connection cut short)")
    return b"".join(chunks)


def fetch(spec: DatasetSpec, name: str, *, timeout: float = 60.0) -> bytes:
    """The verified, decompressed content of IDX file ``name`` of dataset ``spec`` (see the module docstring)."""
    if name not in spec.sha256:
        raise ValueError(f"{spec.name} has no file {name!r}; known files: {sorted(spec.sha256)}")
    expected = spec.sha256[name]

    offline_root = os.environ.get("COURSEPKG_DATA")
    if offline_root:
        found = _find_local(Path(offline_root).expanduser() / spec.name, name)
        if found is not None:
            # An offline copy that fails verification is an error, never silently replaced.
            return _verified_content(found, expected)

    cached_folder = cache_dir() / spec.name
    cached = _find_local(cached_folder, name)
    if cached is not None:
        try:
            return _verified_content(cached, expected)
        except DataIntegrityError as error:
            warnings.warn(f"discarding a corrupt cached file and downloading it again: {error}", stacklevel=2)
            cached.unlink(missing_ok=True)

    failures = []
    for mirror in spec.mirrors:
        url = f"{mirror}{name}.gz"
        try:
            raw = _download(url, timeout)
            content = _decompress(raw, url)
            digest = _sha256(content)
            if digest != expected:
                raise DataIntegrityError(f"{url}: sha256 of the content is {digest}, expected {expected}")
        except (OSError, http.client.HTTPException, DataIntegrityError, ValueError) as error:
            failures.append(f"  {url}: {error}")
            continue
        try:
            write_atomically(cached_folder / f"{name}.gz", raw)
        except OSError as error:
            warnings.warn(
                f"could not write the cache folder {cached_folder} ({error}); the data is used but not "
                "kept. Set COURSEPKG_CACHE to a writable folder to keep it.",
                stacklevel=2,
            )
        return content
    raise DownloadError(
        f"could not get a verified copy of {spec.name}/{name}:\n"
        + "\n".join(failures)
        + "\nIf you have the files, set COURSEPKG_DATA to the folder that holds "
        f"{spec.name}/{name}.gz."
    )


# ---------------------------------------------------------------------------------------------- loaders


@lru_cache(maxsize=8)
def _load_arrays(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    spec = DATASETS[dataset]
    images_name, labels_name = SPLITS[split]
    images = parse_idx(fetch(spec, images_name), f"{dataset}/{images_name}")
    labels = parse_idx(fetch(spec, labels_name), f"{dataset}/{labels_name}")
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataIntegrityError(
            f"{dataset}/{split}: expected images (N, 28, 28) and labels (N,), got {images.shape} and {labels.shape}"
        )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load(dataset: str, split: str, flatten: bool) -> ImageDataset:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    images, labels = _load_arrays(dataset, split)
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return ImageDataset(x, torch.from_numpy(labels.astype(np.int64)))


def load_mnist(split: str, *, flatten: bool = True) -> ImageDataset:
    """MNIST ``split`` (``"train"``: 60,000 images, ``"test"``: 10,000) as float32 in [0, 1] and int64 labels."""
    return _load("mnist", split, flatten)


def load_fashion_mnist(split: str, *, flatten: bool = True) -> ImageDataset:
    """Fashion-MNIST ``split``; class names are in ``FASHION_MNIST_CLASSES``."""
    return _load("fashion-mnist", split, flatten)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel becomes 1 with probability equal to its intensity.

    Drawing a fresh binarization every epoch (Salakhutdinov & Murray's "dynamic" binarization) is what the
    VAE chapter's likelihoods assume; pass a seeded ``generator`` for reproducible draws.
    """
    validation.tensor(x, "x")
    validation.within(x, "x", 0.0, 1.0, what="intensities")  # on the CPU only: see validation.checks_values
    # u < p with u uniform on [0, 1) is 1 with probability exactly p (0 for p = 0, 1 for p = 1), and on the CPU
    # it is cheaper than torch.bernoulli: the VAE binarizes every batch it trains on.
    uniform = runtime.rand(x.shape, x, generator)
    return (uniform < x).to(x.dtype)


def random_shift(
    x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None, *, side: int = 28
) -> torch.Tensor:
    """Each image of ``x`` (shape (n, side * side), flattened rows) moved by a random whole number of pixels, from
    ``-max_shift`` to ``max_shift`` down and across, drawn independently per image; the pixels shifted in are 0.

    The data augmentation of chapter 4's deep autoencoder: a digit moved by a pixel is still a digit, so the
    training set seems larger and the autoencoder over-fits it less.
    """
    validation.tensor(x, "x")
    max_shift = validation.integer(max_shift, "max_shift", minimum=0)
    side = validation.integer(side, "side", minimum=1)
    if x.dim() != 2 or x.shape[1] != side * side:
        raise ValueError(f"x must have shape (n, {side * side}) (flattened {side}x{side} images), got {tuple(x.shape)}")
    n = x.shape[0]
    padded = torch.nn.functional.pad(x.reshape(n, side, side), (max_shift,) * 4)
    # the top-left corner of each image's window in the padded images: 0 .. 2 max_shift down and across
    corner = (runtime.rand((2, n), x, generator) * (2 * max_shift + 1)).long().clamp_(max=2 * max_shift)
    pixels = torch.arange(side, device=x.device)
    rows = (corner[0, :, None] + pixels)[:, :, None]
    columns = (corner[1, :, None] + pixels)[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], rows, columns].reshape(n, side * side)
