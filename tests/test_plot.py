"""The plotting helpers draw what they are given (checked on the pixels and artists they produce)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursepkg import plot, train  # noqa: E402


@pytest.mark.parametrize("count, ncols", [(1, 10), (7, 3), (30, 10)])
def test_image_grid_places_every_image(count, ncols):
    images = torch.rand(count, 784)
    ax = plot.image_grid(images, ncols=ncols)
    canvas = ax.get_images()[0].get_array()
    columns, rows = min(ncols, count), -(-count // min(ncols, count))
    assert canvas.shape == (rows * 29 + 1, columns * 29 + 1)
    for i in range(count):
        r, c = divmod(i, columns)
        tile = canvas[1 + r * 29 : 1 + r * 29 + 28, 1 + c * 29 : 1 + c * 29 + 28]
        np.testing.assert_allclose(tile, images[i].reshape(28, 28).numpy())
    plt.close("all")


def test_image_grid_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="image_shape"):
        plot.image_grid(np.zeros((3, 100)))


def test_latent_scatter_one_group_per_label():
    codes = torch.randn(200, 2)
    labels = torch.arange(200) % 4
    ax = plot.latent_scatter(codes, labels)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 200
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot.latent_scatter(torch.randn(5, 3))
    plt.close("all")


def test_loss_curves_draws_train_and_validation():
    history = train.History(train_loss=[3.0, 2.0, 1.0], val_loss=[3.5, 2.5, 2.0])
    ax = plot.loss_curves({"model": history, "baseline": [4.0, 3.0]})
    lines = {line.get_label(): line.get_ydata().tolist() for line in ax.get_lines()}
    assert lines == {"model train": [3.0, 2.0, 1.0], "model validation": [3.5, 2.5, 2.0], "baseline": [4.0, 3.0]}
    plt.close("all")
