"""Companion package of the course *Autoencoders: from gradients to the ELBO*.

One module per chapter (``gd``, ``nn``, ``backprop``, ``pca``, ``autoencoders``, ``vae``) and shared
infrastructure (``runtime``, ``data``, ``train``, ``plot``, ``grading``). Import the module you need::

    from coursepkg import data, train
    images, labels = data.load_mnist("train")
"""

__version__ = "0.1.0"

# Where the course lives: Colab notebooks install coursepkg from here (keep in step with _config.yml).
REPOSITORY_URL = "https://github.com/autoencoders-course/autoencoders-course"
