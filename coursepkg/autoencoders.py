"""Chapter 5: regularized autoencoders (and the multilayer autoencoder every later chapter reuses).

The deep autoencoder of chapter 4 (784-1000-500-250-30, after Hinton and Salakhutdinov 2006) is an
:class:`MLPAutoencoder` too: one class for every fully connected autoencoder of the course.

Chapter 5 adds what makes an autoencoder learn something useful: a regularizer added to the reconstruction
error (equation ``eq-ch5-objective`` of the book),

* sparsity: the L1 activity penalty :func:`l1_activity_penalty`, the Bernoulli KL penalty
  :func:`kl_sparsity_penalty` (built on :func:`bernoulli_kl`) and k-sparse codes (:func:`top_k_sparse`,
  :class:`KSparseAutoencoder`);
* denoising: the corruptions :func:`gaussian_noise` and :func:`masking_noise`;
* contraction: the exact Jacobian penalty :func:`contractive_penalty` and its closed form for a sigmoid layer,
  :func:`sigmoid_contractive_penalty`;

the loss functions :func:`autoencoder_loss` builds from them for ``coursepkg.train.fit``, and the tools of the
applications: :func:`reconstruction_error`, :func:`psnr`, :func:`anomaly_scores`, :func:`codes`,
:func:`reconstruct`; and unsupervised pre-training (Bengio et al. 2007; Erhan et al. 2010): the greedy layer-wise
:func:`pretrain_stack`, then a supervised network built on the pre-trained encoder, :func:`classifier`, trained on
:func:`classification_loss` and measured by :func:`accuracy`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import layers, runtime, train, validation
from .exercise import exercise
from .train import inference

__all__ = [
    "KSparseAutoencoder",
    "MLPAutoencoder",
    "PENALTIES",
    "PretrainedStack",
    "accuracy",
    "anomaly_scores",
    "autoencoder_loss",
    "bernoulli_kl",
    "classification_loss",
    "classifier",
    "codes",
    "contractive_penalty",
    "gaussian_noise",
    "kl_sparsity_penalty",
    "l1_activity_penalty",
    "masking_noise",
    "pretrain_stack",
    "psnr",
    "reconstruct",
    "reconstruction_error",
    "sigmoid_contractive_penalty",
    "top_k_sparse",
]


class MLPAutoencoder(layers.EncoderDecoder):
    """A fully connected autoencoder with layer widths ``dims`` from the input to the code.

    ``MLPAutoencoder((784, 1000, 500, 250, 30))`` has the encoder 784-1000-500-250-30 and the mirrored
    decoder 30-250-500-1000-784. Hidden layers use ``activation``; the code layer uses ``code_activation``
    (linear by default, as in Hinton and Salakhutdinov's code layer); the output uses ``output_activation``
    (``"sigmoid"`` for pixel intensities in [0, 1], ``"identity"`` for real-valued data).
    """

    def __init__(
        self,
        dims: Sequence[int],
        *,
        activation: str = "relu",
        code_activation: str = "identity",
        output_activation: str = "sigmoid",
    ):
        super().__init__()
        dims = tuple(dims)
        if len(dims) < 2:
            raise ValueError(f"dims must be at least two widths (input, ..., code), got {dims!r}")
        dims = tuple(validation.integer(d, f"dims[{i}]", minimum=1) for i, d in enumerate(dims))
        self.dims = dims
        self.encoder = layers.mlp(dims, activation, code_activation, last_argument="code_activation")
        self.decoder = layers.mlp(dims[::-1], activation, output_activation, last_argument="output_activation")


class KSparseAutoencoder(MLPAutoencoder):
    """An :class:`MLPAutoencoder` whose code keeps only its ``k`` largest units (Makhzani and Frey 2013).

    ``encode`` returns ``top_k_sparse(f_phi(x), k)``, so training, reconstruction and the codes all see the
    sparse code. The code layer is linear by default, as in the paper; ``k`` may be changed after training
    (the paper encodes with a somewhat larger k at test time).
    """

    def __init__(self, dims: Sequence[int], k: int, **kwargs):
        super().__init__(dims, **kwargs)
        self.k = _check_code_size(k, self.dims[-1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The k-sparse code: the encoder's output with all but its k largest units set to zero."""
        return top_k_sparse(self.encoder(x), self.k)


# ------------------------------------------------------------------------------------------ input checks


def _check_activations(h, name: str = "h") -> None:
    """h is a batch (N, m) of activations in [0, 1] (for example sigmoid units)."""
    validation.tensor(h, name, ndim=2)
    if h.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    validation.within(h, name, 0.0, 1.0, what="activations, e.g. sigmoid units")


def _check_rho(rho) -> None:
    """rho (a number or a tensor) lies in the open interval (0, 1)."""
    if validation.is_tensor(rho):
        validation.within(rho, "rho", 0.0, 1.0, open_interval=True, what="the target mean activation")
    else:
        validation.probability(rho, "rho", open_interval=True)


def _check_code_size(k, m: int) -> int:
    """k, the number of code units a k-sparse code keeps, is an integer in [1, m]."""
    return validation.integer(k, "k (the number of code units kept)", minimum=1, maximum=m)


def _check_pair(x, x_hat) -> None:
    """x and its reconstruction x_hat are floating tensors of the same shape with a batch dimension."""
    validation.tensor(x, "x")
    validation.tensor(x_hat, "x_hat")
    validation.same_shape(x, x_hat, ("x", "x_hat"))
    if x.ndim < 1:
        raise ValueError("x must have a batch dimension, got a scalar")


# ----------------------------------------------------------------------------------- sparsity penalties


def l1_activity_penalty(h: torch.Tensor) -> torch.Tensor:
    """The L1 activity penalty sum_i |a_i| of equation (eq-ch5-l1), averaged over the batch.

    ``h`` has shape (N, m), one row of code activations per example; the result is a scalar,
    (1/N) sum_n sum_i |h_ni|, to be added to a batch-mean reconstruction error with a weight lambda.
    """
    validation.tensor(h, "h", ndim=2)
    return h.abs().sum(dim=1).mean()


@exercise(hint="Return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat)), elementwise.")
def bernoulli_kl(rho, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)), elementwise: equation (eq-ch5-bernoulli-kl).

    KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).

    ``rho`` (a number or a tensor, in the open interval (0, 1)) and ``rho_hat`` (a tensor with entries in
    [0, 1]) broadcast against each other. The result is infinite where ``rho_hat`` is 0 or 1.
    """
    validation.tensor(rho_hat, "rho_hat")
    _check_rho(rho)
    validation.within(rho_hat, "rho_hat", 0.0, 1.0, what="probabilities")
    rho = torch.as_tensor(rho, dtype=rho_hat.dtype, device=rho_hat.device)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


@exercise(
    hint="rho_hat = h.mean(dim=0) is the mean activation of each unit over the batch; return the sum over units "
    "of rho * log(rho / rho_hat) + (1 - rho) * log((1 - rho) / (1 - rho_hat))."
)
def kl_sparsity_penalty(h: torch.Tensor, rho: float, *, eps: float = 1e-6) -> torch.Tensor:
    """The KL sparsity penalty sum_j KL(rho || rho_hat_j) of equation (eq-ch5-kl-sparsity).

    ``h`` has shape (N, m): the activations in [0, 1] (sigmoid units) of m code units on a batch of N
    examples. ``rho_hat_j = (1/N) sum_n h_nj`` is the mean activation of unit j over the batch, and
    ``rho`` in (0, 1) the target mean activation. Return the scalar

        sum_j [ rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)) ],

    the KL divergence of equation (eq-ch5-bernoulli-kl) summed over the m units. (``rho_hat`` is clamped to
    [eps, 1 - eps] so that a unit that is never, or always, on gives a large but finite penalty.)
    """
    _check_activations(h, "h")
    _check_rho(rho)
    rho_hat = h.mean(dim=0).clamp(eps, 1 - eps)
    return bernoulli_kl(rho, rho_hat).sum()


@exercise(hint="Take the k largest entries of each row with torch.topk(h, k, dim=1) and keep only them.")
def top_k_sparse(h: torch.Tensor, k: int) -> torch.Tensor:
    """The k-sparse code of equation (eq-ch5-k-sparse): keep the k largest entries of each row of h.

    ``h`` has shape (N, m); return a tensor of the same shape in which, in every row, the k largest entries
    (by value, not by magnitude) are unchanged and the other m - k entries are 0. Gradients flow to the kept
    entries only. ``k`` must be an int in [1, m].
    """
    validation.tensor(h, "h", ndim=2)
    _check_code_size(k, h.shape[1])
    kept = torch.topk(h, k, dim=1).indices
    mask = torch.zeros_like(h).scatter(1, kept, 1.0)
    return h * mask


# ------------------------------------------------------------------------------------------- corruptions


def gaussian_noise(x: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive Gaussian corruption x^ = x + eps, eps ~ N(0, sigma^2 I) (equation eq-ch5-gaussian-noise).

    Every entry of ``x`` gets its own independent noise; ``sigma >= 0``. The result is not clipped, so
    corrupted pixels may leave [0, 1]. Pass a ``torch.Generator`` for reproducible noise.
    """
    validation.tensor(x, "x")
    sigma = validation.number(sigma, "sigma (the noise's standard deviation)", minimum=0.0)
    return x + sigma * runtime.randn(x.shape, x, generator)


@exercise(
    hint="Draw u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) and set to 0 the "
    "entries of x where u < p; leave the others unchanged."
)
def masking_noise(x: torch.Tensor, p: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masking corruption (equation eq-ch5-masking-noise): set each entry of x to 0 with probability p.

    Every entry is dropped independently of all the others; the entries that survive keep their value
    (no rescaling). ``p`` lies in [0, 1). Draw the random numbers with ``generator`` when one is given, so
    that the same seed gives the same mask: draw u ~ U[0, 1) for every entry (``torch.rand``) and zero the
    entries with u < p. Return a new tensor of x's shape, dtype and device.
    """
    validation.tensor(x, "x")
    p = validation.probability(p, "p (the probability of masking an entry)")
    if p == 1.0:
        raise ValueError("p (the probability of masking an entry) must be < 1: p = 1 would mask every entry")
    u = runtime.rand(x.shape, x, generator)
    return torch.where(u < p, torch.zeros_like(x), x)


# ----------------------------------------------------------------------------------- contractive penalty


def contractive_penalty(
    encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """The contractive penalty ||J_f(x)||_F^2 of equation (eq-ch5-contractive), computed exactly.

    ``encoder`` maps one example of shape (d,) to its code of shape (m,) (an ``nn.Module`` made of layers
    that accept unbatched inputs, such as ``nn.Linear`` and elementwise activations); ``x`` has shape (N, d).
    The Jacobian J_f(x_n) (m by d) of every example is computed with ``torch.func.jacrev`` vectorized over
    the batch by ``torch.func.vmap``, and the squared Frobenius norm sum_ji (d f_j / d x_i)^2 is returned per
    example (``reduction="none"``, shape (N,)) or averaged over the batch (``"mean"``, the default). The
    result is differentiable with respect to the encoder's parameters, so it can be trained on. Cost: m
    backward passes per example; for one sigmoid layer use :func:`sigmoid_contractive_penalty` instead.
    """
    if not callable(encoder):
        raise TypeError(f"encoder must be callable (e.g. model.encoder), got {type(encoder).__name__}")
    validation.tensor(x, "x", ndim=2)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    jacobians = torch.func.vmap(torch.func.jacrev(encoder))(x)  # (N, m, d)
    squared_norms = jacobians.pow(2).flatten(start_dim=1).sum(dim=1)
    return squared_norms.mean() if reduction == "mean" else squared_norms


@exercise(
    hint="For h = sigmoid(W x + b), d h_j / d x_i = h_j (1 - h_j) W_ji. Sum its square over j and i for each "
    "example: ((h * (1 - h)) ** 2) @ (W ** 2).sum(dim=1), then average over the batch."
)
def sigmoid_contractive_penalty(W: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The contractive penalty of one sigmoid layer in closed form: equation (eq-ch5-sigmoid-contractive).

    For the encoder h = sigmoid(W x + b) with ``W`` of shape (m, d) (``nn.Linear(d, m).weight``), the
    Jacobian is d h_j / d x_i = h_j (1 - h_j) W_ji, so

        ||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.

    ``h`` has shape (N, m): the layer's activations on a batch. Return the mean of this quantity over the N
    examples (a scalar), which equals ``contractive_penalty(encoder, x)`` at a fraction of its cost.
    """
    validation.tensor(W, "W", ndim=2)
    validation.tensor(h, "h", ndim=2)
    if h.shape[1] != W.shape[0]:
        raise ValueError(
            f"h has {h.shape[1]} units but W has {W.shape[0]} rows: expected W of shape (m, d) and h of shape (N, m)"
        )
    slopes = (h * (1 - h)) ** 2  # (N, m)
    row_norms = (W**2).sum(dim=1)  # (m,)
    return (slopes @ row_norms).mean()


# ------------------------------------------------------------------------------------------------ losses


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """The squared error ||x_n - x~_n||^2 of every example: shape (N,) for a batch of shape (N, ...)."""
    _check_pair(x, x_hat)
    return (x - x_hat).pow(2).flatten(start_dim=1).sum(dim=1)


def psnr(x: torch.Tensor, x_hat: torch.Tensor, *, max_value: float = 1.0) -> torch.Tensor:
    """The peak signal-to-noise ratio 10 log10(max_value^2 / MSE) of every example, in decibels: shape (N,).

    MSE is the mean squared error over the pixels of one example; higher is better, and each halving of the
    error adds about 3 dB.
    """
    _check_pair(x, x_hat)
    mse = (x - x_hat).pow(2).flatten(start_dim=1).mean(dim=1)
    return 10 * torch.log10(max_value**2 / mse)


PENALTIES = ("none", "l1", "kl", "contractive", "sigmoid_contractive")


def _sigmoid_layer(model: nn.Module) -> nn.Linear:
    layers = list(getattr(model, "encoder", []))
    if len(layers) != 2 or not isinstance(layers[0], nn.Linear) or not isinstance(layers[1], nn.Sigmoid):
        raise ValueError(
            "penalty='sigmoid_contractive' needs a one-layer sigmoid encoder, e.g. "
            "MLPAutoencoder((784, m), code_activation='sigmoid'); use penalty='contractive' for other encoders"
        )
    return layers[0]


def autoencoder_loss(
    penalty: str = "none",
    weight: float = 0.0,
    *,
    rho: float = 0.05,
    corruption: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[..., torch.Tensor]:
    """A loss function ``loss_fn(model, x)`` for ``train.fit``: equation (eq-ch5-objective).

    loss = (1/N) sum_n ||x_n - g(f(x^_n))||^2 + weight * Omega

    where x^_n = ``corruption(x_n)`` (a denoising autoencoder, e.g. ``partial(gaussian_noise, sigma=0.5)``)
    or x_n itself, h = ``model.encode(x^)`` is the code, and the regularizer Omega is chosen by ``penalty``:
    ``"none"``; ``"l1"`` (:func:`l1_activity_penalty`); ``"kl"`` (:func:`kl_sparsity_penalty` with target
    ``rho``; needs codes in [0, 1]); ``"contractive"`` (:func:`contractive_penalty` of ``model.encoder`` at
    x^); ``"sigmoid_contractive"`` (:func:`sigmoid_contractive_penalty`, for a one-layer sigmoid encoder).
    The model needs ``encode`` and ``decode`` (an :class:`MLPAutoencoder`). Extra batch tensors (labels)
    are ignored.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    validation.number(weight, "weight (of the penalty)", minimum=0.0)
    if penalty == "kl":
        _check_rho(rho)
    if corruption is not None and not callable(corruption):
        raise TypeError(f"corruption must be callable or None, got {type(corruption).__name__}")

    def loss_fn(model: nn.Module, x: torch.Tensor, *unused: torch.Tensor) -> torch.Tensor:
        x_in = x if corruption is None else corruption(x)
        h = model.encode(x_in)
        loss = reconstruction_error(x, model.decode(h)).mean()
        if penalty == "l1":
            loss = loss + weight * l1_activity_penalty(h)
        elif penalty == "kl":
            loss = loss + weight * kl_sparsity_penalty(h, rho)
        elif penalty == "contractive":
            loss = loss + weight * contractive_penalty(model.encoder, x_in)
        elif penalty == "sigmoid_contractive":
            loss = loss + weight * sigmoid_contractive_penalty(_sigmoid_layer(model).weight, h)
        return loss

    return loss_fn


# ---------------------------------------------------------------------------------- applications' tools


def _batched(function: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, x: torch.Tensor, batch_size: int):
    """``function`` on ``x`` batch by batch (``train.inference``), gathered on the CPU."""
    validation.tensor(x, "x")
    return torch.cat([out.cpu() for out, _ in inference(function, model, x, batch_size=batch_size)])


def codes(model: nn.Module, x: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """``model.encode(x)`` for a whole dataset, in batches on the model's device, without autograd (on the CPU)."""
    return _batched(model.encode, model, x, batch_size)


def reconstruct(model: nn.Module, x: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """``model(x)`` for a whole dataset, in batches on the model's device, without autograd (on the CPU)."""
    return _batched(model, model, x, batch_size)


def anomaly_scores(model: nn.Module, x: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """Anomaly scores: the reconstruction error ||x_n - g(f(x_n))||^2 of every example, shape (N,).

    An autoencoder reconstructs well what resembles its training data; a large error flags an input unlike
    it (equation eq-ch5-anomaly). Threshold the scores, or rank them and compute a ROC AUC.
    """
    return _batched(lambda batch: reconstruction_error(batch, model(batch)), model, x, batch_size)


# ------------------------------------------------------------------------------ unsupervised pre-training


@dataclass
class PretrainedStack:
    """What :func:`pretrain_stack` returns: the stacked ``encoder`` (Linear, activation, Linear, activation, ...),
    the one-layer ``autoencoders`` it was taken from (their encoders *are* its layers) and their training
    ``histories``."""

    encoder: nn.Sequential
    autoencoders: list[MLPAutoencoder]
    histories: list[train.History]


def pretrain_stack(
    x: torch.Tensor,
    widths: Sequence[int],
    *,
    activation: str = "relu",
    first_output: str = "sigmoid",
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 128,
    corruption: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> PretrainedStack:
    """Greedy layer-wise pre-training of the encoder ``widths[0]-widths[1]-...-widths[-1]`` on unlabelled ``x``.

    Layer l is the encoder ``h_l = phi(W_l h_(l-1) + b_l)`` of a one-hidden-layer autoencoder
    ``MLPAutoencoder((widths[l-1], widths[l]), code_activation=activation)`` trained with :func:`autoencoder_loss`
    (the squared error; with ``corruption``, a denoising autoencoder) on the codes ``h_(l-1)`` of the layers below,
    which stay fixed (``h_0 = x``): the stacked autoencoders of Bengio et al. (2007) and Vincent et al. (2010).
    The first autoencoder's output uses ``first_output`` (``"sigmoid"`` for intensities in [0, 1]); the later
    ones reconstruct unbounded codes, with a linear output. Each layer is trained with ``train.fit`` for
    ``epochs`` epochs, seeded with ``seed + l - 1``. Returns a :class:`PretrainedStack` whose ``encoder`` is
    laid out as ``layers.mlp(widths, activation, activation)``, on the CPU.
    """
    widths = tuple(validation.integer(w, f"widths[{i}]", minimum=1) for i, w in enumerate(widths))
    if len(widths) < 2:
        raise ValueError(f"widths must hold at least two widths (input, ..., top layer), got {widths!r}")
    validation.tensor(x, "x", ndim=2)
    if x.shape[1] != widths[0]:
        raise ValueError(f"x must have shape (N, {widths[0]}) like widths[0], got {tuple(x.shape)}")
    seed = validation.integer(seed, "seed", minimum=0)
    stack, autoencoders, histories = [], [], []
    inputs = x
    for depth, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        runtime.seed_everything(seed + depth)
        layer_ae = MLPAutoencoder(
            (width_in, width_out),
            code_activation=activation,
            output_activation=first_output if depth == 0 else "identity",
        )
        history = train.fit(
            layer_ae,
            autoencoder_loss(corruption=corruption),
            inputs,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed + depth,
            device=device,
            progress=progress,
            description=f"pre-training layer {depth + 1} ({width_in}-{width_out})",
        )
        layer_ae.cpu()
        inputs = codes(layer_ae, inputs)
        stack.extend(layer_ae.encoder)
        autoencoders.append(layer_ae)
        histories.append(history)
    return PretrainedStack(nn.Sequential(*stack), autoencoders, histories)


def classifier(encoder: nn.Module, n_classes: int) -> nn.Sequential:
    """A supervised network on top of ``encoder``: a *copy* of it followed by ``nn.Linear(width, n_classes)``,
    whose outputs are the logits of a softmax (``width`` is the out_features of the encoder's last
    ``nn.Linear``). Fine-tuning it (:func:`classification_loss`) trains every layer and leaves ``encoder``
    as it was."""
    n_classes = validation.integer(n_classes, "n_classes", minimum=2)
    linears = [module for module in encoder.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"encoder has no nn.Linear layer to read its width from: {type(encoder).__name__}")
    return nn.Sequential(copy.deepcopy(encoder), nn.Linear(linears[-1].out_features, n_classes))


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``train.fit`` loss: the softmax cross-entropy of the logits ``model(x)`` against the labels ``y``, averaged
    over the batch."""
    return nn.functional.cross_entropy(model(x), y)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2048) -> float:
    """The fraction of the examples whose largest logit ``model(x)`` is at their label ``y``."""
    validation.tensor(x, "x")
    if not torch.is_tensor(y) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be a vector of {x.shape[0]} labels, one per row of x")
    predictions = _batched(lambda batch: model(batch).argmax(dim=1), model, x, batch_size)
    return (predictions == y.cpu()).double().mean().item()
