"""scikit-learn's 8x8 handwritten digits, brought to LeNet's 1x28x28 input: the offline default.

``sklearn.datasets.load_digits`` ships inside scikit-learn (no download): 1,797 images
of 8x8 pixels with values 0..16, about 180 per digit.  LeNet-5 expects 28x28 images
(MNIST's size), so each image is

1. scaled to [0, 1] (``/ 16``),
2. upsampled 3x to 24x24 by **bilinear interpolation** -- with the same sampling
   positions as ``torch.nn.functional.interpolate(mode="bilinear",
   align_corners=False)``: output pixel ``i`` reads input coordinate
   ``(i + 0.5) / 3 - 0.5``, clamped to the image, and mixes its two neighbours
   linearly.  Written as a matrix ``U`` (24 x 8) this is ``U @ image @ U^T``;
3. padded with a 2-pixel zero border to 28x28 (MNIST's digits, too, sit inside a
   blank margin),
4. normalised with the training split's pixel mean and standard deviation
   (:data:`DIGITS_MEAN`, :data:`DIGITS_STD`, measured once and written down here).

The held-out split is fixed -- it does not depend on the training seed -- so every
run is judged on the same 359 images: for each digit class, its images are permuted
with ``numpy.random.default_rng(0)`` and ``round(0.2 * count)`` of them are held out
(a stratified 80/20 split: 1,438 training / 359 test images).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import UserError
from .loader import TensorDataset
from .mnist import Split

UPSAMPLE, PAD = 3, 2  # 8 * 3 + 2 * 2 = 28
TEST_FRACTION, SPLIT_SEED = 0.2, 0
# Mean / std of the training split's pixels after steps 1-3 (checked by tests/data/test_loader.py).
DIGITS_MEAN, DIGITS_STD = 0.2244, 0.3140


def _bilinear_matrix(n_in: int, scale: int) -> np.ndarray:
    """``U`` (n_in*scale, n_in): row ``i`` holds the interpolation weights of output pixel ``i``."""
    n_out = n_in * scale
    src = np.clip((np.arange(n_out) + 0.5) / scale - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    u = np.zeros((n_out, n_in))
    np.add.at(u, (np.arange(n_out), lo), 1 - w)
    np.add.at(u, (np.arange(n_out), hi), w)
    return u


def to_lenet_input(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) values 0..16 -> (N, 1, 28, 28) float32 in [0, 1] (steps 1-3 of the module docstring)."""
    u = _bilinear_matrix(images.shape[-1], UPSAMPLE)
    up = u @ (images.astype(np.float64) / 16.0) @ u.T  # (N, 24, 24); matmul broadcasts over N
    out = np.pad(up, ((0, 0), (PAD, PAD), (PAD, PAD)))
    return out[:, None].astype(np.float32)


def stratified_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """``(train_indices, test_indices)``: ``round(test_fraction * count)`` of each class held out."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 8, 8) float64 0..16, labels (1797,) int64)`` from scikit-learn's copy.

    The data is the file ``sklearn/datasets/data/digits.csv.gz`` (64 pixels and the label per
    row).  Importing scikit-learn takes seconds, so the file is read directly when it is where
    scikit-learn keeps it; otherwise ``sklearn.datasets.load_digits`` is called.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None:
        raise UserError(
            "the digits dataset needs scikit-learn: pip install 'minigrad[train]' (or scikit-learn), "
            "or train on MNIST with --dataset mnist --data-dir DIR"
        )
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return bunch.images, bunch.target.astype(np.int64)


def load_digits() -> Split:
    """The digits as a :class:`~minigrad.data.mnist.Split` of normalised (N, 1, 28, 28) images."""
    raw_images, labels = read_sklearn_digits()
    images = to_lenet_input(raw_images)
    images = (images - np.float32(DIGITS_MEAN)) / np.float32(DIGITS_STD)
    train, test = stratified_split(labels)
    return Split(
        TensorDataset(images[train], labels[train]),
        TensorDataset(images[test], labels[test]),
        f"scikit-learn digits (8x8 upsampled to 28x28): {len(train)} training / {len(test)} test images "
        "(fixed stratified split)",
    )
