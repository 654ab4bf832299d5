"""``np.asarray(t)`` / ``np.array(t)`` on a minigrad Tensor (``Tensor.__array__``), against torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg

VALUES = {
    "float32": [[1.5, -2.0], [3.25, 4.0]],
    "float64": [0.1, 0.2, 0.3],
    "int64": [[1, 2, 3]],
    "int32": 7,
    "uint8": [0, 255],
    "bool": [True, False],
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_asarray_gives_the_values_and_dtype(device, name):
    t = mg.tensor(VALUES[name], dtype=name, device=device)
    expected = np.asarray(torch.tensor(VALUES[name], dtype=getattr(torch, name)))
    for a in (np.asarray(t), np.array(t), np.asarray(t, dtype=None)):
        assert isinstance(a, np.ndarray) and a.dtype == expected.dtype and a.shape == expected.shape
        np.testing.assert_array_equal(a, expected)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), expected.astype(np.float64))


def test_memory_sharing_follows_torch(device):
    """In host memory np.asarray is a view (as torch's), np.array a copy; from a GPU both are copies.

    (Under emulate_cuda a "cuda" tensor's data is in host memory: it is viewed like a CPU one.)"""
    t = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    view, copy = np.asarray(t), np.array(t)
    copy[0] = 10.0
    assert t.tolist() == [1.0, 2.0]
    in_host_memory = device == "cpu" or t.data.device.type == "cpu"
    if in_host_memory:
        view[1] = 20.0
        assert t.tolist() == [1.0, 20.0]
        np.asarray(t, copy=False)[1] = 2.0
        assert t.tolist() == [1.0, 2.0]
    else:
        with pytest.raises(ValueError, match=r"__array__: a cuda tensor of shape \(2,\) and dtype float32 cannot"):
            np.asarray(t, copy=False)
    with pytest.raises(ValueError, match=r"without a copy \(copy=False\)"):
        np.asarray(t, dtype=np.float64, copy=False)
    # numeric arrays, so NumPy functions and np.testing work on tensors directly
    assert np.sum(np.asarray(mg.ones(2, 3, device=device))) == 6.0
    np.testing.assert_allclose(mg.tensor([0.5, 1.5], device=device), [0.5, 1.5])
