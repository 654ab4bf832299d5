"""Datasets and batching: MNIST (IDX files, downloader), the offline 8x8 digits, DataLoader.

>>> from minigrad.data import DataLoader, load_digits
>>> split = load_digits()                      # offline: ships with scikit-learn
>>> for images, labels in DataLoader(split.train, batch_size=64, shuffle=True, generator=0):
...     break                                  # images (64, 1, 28, 28) float32, labels (64,) int64
"""

from .digits import load_digits
from .loader import DataLoader, TensorDataset, default_collate, random_shift
from .mnist import Split, download_mnist, load_mnist, read_idx, read_mnist_pair

__all__ = [
    "DataLoader",
    "Split",
    "TensorDataset",
    "default_collate",
    "download_mnist",
    "load_digits",
    "load_mnist",
    "random_shift",
    "read_idx",
    "read_mnist_pair",
]
