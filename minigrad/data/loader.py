"""TensorDataset and DataLoader: mini-batches of NumPy arrays as minigrad Tensors.

A training loop wants, once per epoch, the examples in a (possibly shuffled) order,
cut into batches::

    loader = DataLoader(dataset, batch_size=64, shuffle=True, generator=0)
    for images, labels in loader:      # images (B, 1, 28, 28) float32, labels (B,) int64
        ...

``len(loader)`` is the number of batches: ``ceil(N / B)``, or ``N // B`` with
``drop_last=True`` (which drops a final, smaller batch -- useful when a small last
batch would make a noisy gradient step).

Shuffling draws a fresh permutation of ``0..N-1`` every epoch from a NumPy
generator: pass ``generator=<int seed>`` (or a ``numpy.random.Generator``) for a
reproducible order, or leave it out to use minigrad's generator (seeded by
:func:`minigrad.manual_seed`).

For a :class:`TensorDataset` a batch is cut with one fancy-indexing operation per
array (``images[idx]``), not by stacking examples one at a time, so loading costs
next to nothing next to the model.  Any other dataset (anything with ``__len__`` and
``__getitem__`` returning a tuple of arrays) is stacked example by example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..tensor import Tensor, wrap


class TensorDataset:
    """Arrays that share their first dimension; example ``i`` is ``(a[i], b[i], ...)``.

    Accepts NumPy arrays, lists and minigrad Tensors (as ``torch.utils.data.TensorDataset``).
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        self.arrays = tuple(a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        n = {len(a) for a in self.arrays}
        if len(n) != 1:
            raise ValueError(
                f"TensorDataset: size mismatch between arrays: first dimensions {[len(a) for a in self.arrays]}"
            )

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


def default_collate(examples: Sequence[tuple]) -> tuple[Tensor, ...]:
    """Stack a list of ``(x, y, ...)`` examples into ``(X, Y, ...)`` batch Tensors."""
    return tuple(_to_tensor(np.stack([np.asarray(field) for field in fields])) for fields in zip(*examples))


def _to_tensor(batch: np.ndarray) -> Tensor:
    # Python floats arrive as float64 and ints as the platform int: give PyTorch's defaults.
    if batch.dtype.kind == "f" and batch.dtype not in (np.float32, np.float64):
        batch = batch.astype(np.float32)
    elif batch.dtype.kind in "iu" and batch.dtype not in (np.int64, np.int32, np.uint8):
        batch = batch.astype(np.int64)
    return wrap(np.ascontiguousarray(batch))


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``; see the module docstring."""

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: np.random.Generator | int | None = None,
        collate_fn: Callable | None = None,
    ):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size should be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = drop_last
        self.generator = np.random.default_rng(generator) if isinstance(generator, (int, np.integer)) else generator
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self.generator is None:
            import minigrad

            return minigrad._generator().permutation(n)
        return self.generator.permutation(n)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._order()
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if fast:
                yield tuple(_to_tensor(a[idx]) for a in self.dataset.arrays)
            else:
                examples = [self.dataset[int(i)] for i in idx]
                yield (self.collate_fn or default_collate)(examples)


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator, fill: float = 0.0) -> np.ndarray:
    """Move each image (N, C, H, W) by its own random offset of up to ``max_shift`` pixels in x and y.

    Data augmentation: a digit moved by a pixel or two is still the same digit, so training on
    shifted copies teaches the network that position doesn't matter, and it generalises better
    from few examples.  Each image is padded by ``max_shift`` pixels of ``fill`` (the background
    value) on every side and an (H, W) window is cut out at offsets ``dy, dx`` drawn uniformly from
    ``0..2*max_shift`` -- a shift of ``max_shift - dy`` rows and ``max_shift - dx`` columns.  One
    fancy-indexing operation cuts all N windows at once.
    """
    if max_shift <= 0:
        return images
    n, c, h, w = images.shape
    s = max_shift
    padded = np.pad(images, ((0, 0), (0, 0), (s, s), (s, s)), constant_values=fill)
    dy = rng.integers(0, 2 * s + 1, n)
    dx = rng.integers(0, 2 * s + 1, n)
    rows = dy[:, None] + np.arange(h)  # (N, H): the padded rows each output row reads
    cols = dx[:, None] + np.arange(w)  # (N, W)
    return padded[
        np.arange(n)[:, None, None, None],
        np.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
