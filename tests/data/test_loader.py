"""DataLoader, TensorDataset and the 8x8 digits brought to LeNet's input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad.data import DataLoader, TensorDataset, default_collate, load_digits
from minigrad.data import digits as D


def make_dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


# ---------------------------------------------------------------------------------------- DataLoader
@pytest.mark.parametrize(
    "n, batch, drop_last, sizes", [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4])]
)
def test_batches_cover_the_data_in_order(n, batch, drop_last, sizes):
    loader = DataLoader(make_dataset(n), batch_size=batch, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) and [len(y) for _, y in batches] == sizes
    x0, y0 = batches[0]
    assert isinstance(x0, mg.Tensor) and x0.dtype == mg.float32 and y0.dtype == mg.int64 and x0.shape == (batch, 3)
    ys = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(ys, np.arange(sum(sizes)))
    for x, y in batches:  # each example's fields stay together
        np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy() * 3)


def test_shuffle_is_seeded_and_changes_each_epoch():
    ds = make_dataset(50)
    order = lambda loader: np.concatenate([y.numpy() for _, y in loader])  # noqa: E731
    a = DataLoader(ds, batch_size=8, shuffle=True, generator=3)
    b = DataLoader(ds, batch_size=8, shuffle=True, generator=3)
    e1, e2 = order(a), order(a)
    np.testing.assert_array_equal(e1, order(b))  # same seed, same first epoch
    assert not np.array_equal(e1, e2)  # a new permutation each epoch
    assert sorted(e1) == list(range(50)) and not np.array_equal(e1, np.arange(50))
    assert not np.array_equal(e1, order(DataLoader(ds, batch_size=8, shuffle=True, generator=4)))
    mg.manual_seed(11)
    c = order(DataLoader(ds, batch_size=8, shuffle=True))  # minigrad's generator by default
    mg.manual_seed(11)
    np.testing.assert_array_equal(c, order(DataLoader(ds, batch_size=8, shuffle=True)))
    gen = np.random.default_rng(0)
    assert sorted(order(DataLoader(ds, batch_size=7, shuffle=True, drop_last=True, generator=gen))) != list(range(50))


def test_generic_dataset_and_collate():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((2,), float(i)), i * i

    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.dtype == mg.float64 and x.shape == (3, 2) and y.dtype == mg.int64 and y.tolist() == [0, 1, 4]
    batches = list(DataLoader(Squares(), batch_size=2, collate_fn=lambda ex: [e[1] for e in ex]))
    assert batches == [[0, 1], [4, 9], [16]]
    (a,) = default_collate([(1.5,), (2.5,)])
    assert a.dtype == mg.float64  # Python floats become float64, as in torch's default_collate


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(make_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="size mismatch between arrays"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()
    ds = TensorDataset(mg.ones(4, 2), [0, 1, 2, 3])  # Tensors and lists are accepted
    assert len(ds) == 4 and ds[1][1] == 1


# ---------------------------------------------------------------------------------------- digits
def test_bilinear_upsampling_matches_torch_interpolate():
    images = np.random.default_rng(0).integers(0, 17, (5, 8, 8)).astype(np.float64)
    out = D.to_lenet_input(images)
    assert out.shape == (5, 1, 28, 28) and out.dtype == np.float32
    ref = torch.nn.functional.interpolate(torch.tensor(images[:, None] / 16), scale_factor=3, mode="bilinear")
    np.testing.assert_allclose(out[:, :, 2:26, 2:26], ref.numpy(), atol=1e-6)
    assert not out[:, :, :2].any() and not out[:, :, 26:].any() and not out[:, :, :, :2].any()  # the border
    assert out.min() >= 0 and out.max() <= 1


def test_digits_split_is_fixed_stratified_and_normalised():
    split = load_digits()
    (xtr, ytr), (xte, yte) = split.train.arrays, split.test.arrays
    assert xtr.shape == (1438, 1, 28, 28) and xte.shape == (359, 1, 28, 28)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert "1438 training / 359 test" in split.description
    # Stratified: each class holds out round(20%) of its images.
    total = np.bincount(np.concatenate([ytr, yte]))
    np.testing.assert_array_equal(np.bincount(yte), np.round(0.2 * total))
    # Fixed: independent of minigrad's seed; disjoint.
    mg.manual_seed(123)
    again = load_digits()
    np.testing.assert_array_equal(again.test.arrays[0], xte)
    tr_idx, te_idx = D.stratified_split(np.concatenate([ytr, yte]))
    assert not set(tr_idx) & set(te_idx)
    # The normalisation constants written in digits.py are the training split's statistics.
    assert abs(xtr.mean()) < 1e-3 and abs(xtr.std() - 1) < 1e-3


def test_fast_digits_reader_equals_sklearn_load_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = D.read_sklearn_digits()
    bunch = sklearn_digits()
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)
