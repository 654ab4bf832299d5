"""All hypothesis strategies and profiles, in one place.

Shapes are kept small: property tests check *semantics*, and the Triton path
runs under an interpreter that executes every program instance in Python.

Profiles (choose with ``HYPOTHESIS_PROFILE=...``; CI=true selects ``ci``):

* ``dev``      -- the default: 25 examples per test, quick feedback.
* ``ci``       -- 40 examples, derandomized so CI failures reproduce.
* ``thorough`` -- 500 examples, for a long run before a release.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def register_profiles() -> None:
    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("dev", max_examples=25, **common)
    settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **common)
    settings.register_profile("thorough", max_examples=500, **common)
    default = "ci" if os.environ.get("CI") else "dev"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


# ---------------------------------------------------------------------------- dtypes
float_dtypes = st.sampled_from([np.float32, np.float64])


# ---------------------------------------------------------------------------- shapes
def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def broadcastable_shapes(draw, min_dims: int = 0, max_dims: int = 4, max_side: int = 5):
    """Two shapes that broadcast together, e.g. (3, 1, 4) and (5, 1)."""
    shape = draw(shapes(min_dims, max_dims, max_side=max_side))
    a, b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, base_shape=shape, max_side=max_side)).input_shapes
    return a, b


# ---------------------------------------------------------------------------- arrays
@st.composite
def arrays(draw, shape, dtype=np.float64, low: float = -3.0, high: float = 3.0, permuted: bool | None = None):
    """A float array of ``shape`` with values in [low, high].

    With ``permuted`` (drawn when None) the array is a transposed view of a
    differently-laid-out buffer, so it is *not* C-contiguous: ops must honour strides.
    ``shape`` may be a tuple or a strategy drawing one.
    """
    shape = tuple(draw(shape) if isinstance(shape, st.SearchStrategy) else shape)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if permuted is None:
        permuted = len(shape) >= 2 and draw(st.booleans())
    if permuted and len(shape) >= 2:
        perm = draw(st.permutations(range(len(shape))))
        inverse = np.argsort(perm)
        base = rng.uniform(low, high, size=tuple(shape[p] for p in perm)).astype(dtype)
        return base.transpose(inverse)
    return rng.uniform(low, high, size=shape).astype(dtype)


def positive_arrays(shape, dtype=np.float64):
    return arrays(shape, dtype, low=0.1, high=3.0)
