"""The course's figures in one style: image grids, latent scatter plots, interpolation strips, loss curves.

Each function draws into a Matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it, so a
chapter can combine panels with ``plt.subplots`` and the book shows the figure the chapter's code made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["image_grid", "interpolation_strip", "latent_scatter", "loss_curves", "style"]

CMAP_IMAGES = "gray_r"
CMAP_LABELS = "tab10"


def style() -> None:
    """The course's Matplotlib defaults (called on import)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 10,
            "legend.frameon": False,
        }
    )


style()


def _numpy(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _new_axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def image_grid(
    images,
    *,
    ncols: int = 10,
    image_shape: tuple[int, int] = (28, 28),
    ax=None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    padding: int = 1,
):
    """Tile ``images`` (N, 784) or (N, 28, 28), values in [0, 1], into one picture with ``ncols`` columns."""
    array = _numpy(images)
    height, width = image_shape
    if array.ndim == 2:
        if array.shape[1] != height * width:
            raise ValueError(f"images of shape {array.shape} do not match image_shape {image_shape}")
        array = array.reshape(-1, height, width)
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(f"images must have shape (N, {height * width}) or (N, {height}, {width}), N > 0")
    count = array.shape[0]
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    canvas = np.ones((nrows * (height + padding) + padding, ncols * (width + padding) + padding))
    canvas *= np.nan  # padding shows as the background colour
    for i, image in enumerate(array):
        r, c = divmod(i, ncols)
        top, left = padding + r * (height + padding), padding + c * (width + padding)
        canvas[top : top + height, left : left + width] = image
    ax = _new_axes(ax, (ncols * 0.6, nrows * 0.6))
    ax.imshow(canvas, cmap=CMAP_IMAGES, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([padding + r * (height + padding) + height / 2 for r in range(len(row_labels))])
        ax.set_yticklabels(row_labels)
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def interpolation_strip(images, *, ax=None, title: str | None = None, image_shape=(28, 28)):
    """Show decoded points along a path in latent space as one row, from the first endpoint to the last."""
    return image_grid(images, ncols=len(images), ax=ax, title=title, image_shape=image_shape)


def latent_scatter(
    codes,
    labels=None,
    *,
    ax=None,
    title: str | None = None,
    class_names: Sequence[str] | None = None,
    max_points: int = 5000,
    seed: int = 0,
):
    """Scatter 2-D ``codes`` (N, 2) coloured by integer ``labels`` (a legend names the classes)."""
    z = _numpy(codes)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"codes must have shape (N, 2), got {z.shape}")
    y = None if labels is None else _numpy(labels).astype(int)
    if y is not None and y.shape[0] != z.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} entries for {z.shape[0]} codes")
    if z.shape[0] > max_points:  # a random subset keeps the picture readable
        keep = np.random.default_rng(seed).choice(z.shape[0], max_points, replace=False)
        z, y = z[keep], (None if y is None else y[keep])
    ax = _new_axes(ax, (5, 5))
    if y is None:
        ax.scatter(z[:, 0], z[:, 1], s=3, alpha=0.6)
    else:
        cmap = plt.get_cmap(CMAP_LABELS)
        for label in np.unique(y):
            name = class_names[label] if class_names is not None else str(label)
            mask = y == label
            ax.scatter(z[mask, 0], z[mask, 1], s=3, alpha=0.6, color=cmap(label % 10), label=name)
        ax.legend(markerscale=4, loc="best", fontsize=8, ncols=2)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


def loss_curves(histories, *, ax=None, title: str | None = None, log_scale: bool = False, ylabel="loss"):
    """Plot training (solid) and validation (dashed) losses per epoch.

    ``histories`` is a :class:`coursepkg.train.History`, or a mapping from a label to a History or to a
    plain sequence of losses.
    """
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    ax = _new_axes(ax, (6, 4))
    for i, (label, history) in enumerate(histories.items()):
        color = plt.get_cmap(CMAP_LABELS)(i % 10)
        if isinstance(history, Sequence) or isinstance(history, np.ndarray):
            curves = {"": list(history)}
        else:
            curves = {"train": history.train_loss, "validation": history.val_loss}
        for kind, values in curves.items():
            if not len(values):
                continue
            name = " ".join(part for part in (label, kind) if part)
            style = "--" if kind == "validation" else "-"
            ax.plot(range(1, len(values) + 1), values, style, color=color, label=name or None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax
