"""minigrad.microscope: what it records of each program must be exactly what the kernel touched.

The kernels below are small enough that the expected element sets follow from their definition
(program p of a BLOCK-wide vector kernel reads elements p*BLOCK .. p*BLOCK+BLOCK-1 below n), so
each test compares the recording with sets computed independently of the recorder.  Kernels run
under Triton's interpreter (conftest.py sets TRITON_INTERPRET=1 before triton is imported).
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch
import triton
import triton.language as tl

import minigrad as mg
from minigrad import backend, microscope
from minigrad.testing import check_kernel

matplotlib.use("Agg")


@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def _add_unmasked_load_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """BUG: y is loaded without a mask."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs), mask=mask)


@triton.jit
def _add_wrong_store_mask_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """BUG: the store's mask is offs <= n, one lane too many."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=offs <= n)


@triton.jit
def _shift_left_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out[i] = x[i - 1]; BUG: the load's mask ignores i - 1 < 0."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs - 1, mask=mask), mask=mask)


@triton.jit
def _tile_kernel(x_ptr, out_ptr, M, N, sxm, sxn, som, son, BM: tl.constexpr, BN: tl.constexpr):
    """out = 2 x, one BM x BN tile per program (program (i, j): rows i*BM.., columns j*BN..)."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    x = tl.load(x_ptr + rm[:, None] * sxm + rn[None, :] * sxn, mask=mask)
    tl.store(out_ptr + rm[:, None] * som + rn[None, :] * son, 2 * x, mask=mask)


@triton.jit
def _rows_as_if_contiguous_kernel(x_ptr, out_ptr, N, BN: tl.constexpr):
    """out[r] = x[r] for rows of N elements; BUG: assumes rows lie N apart (ignores x's row stride)."""
    r = tl.program_id(0)
    rn = tl.arange(0, BN)
    x = tl.load(x_ptr + r * N + rn, mask=rn < N)
    tl.store(out_ptr + r * N + rn, x, mask=rn < N)


@triton.jit
def _count_kernel(x_ptr, hist_ptr, n, BLOCK: tl.constexpr):
    """hist[0] += number of elements, by atomics."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.atomic_add(hist_ptr + offs * 0, 1.0, mask=mask)


def add(x, y, kernel=_add_kernel, block=8):
    out = torch.zeros_like(x)
    kernel[(triton.cdiv(x.numel(), block),)](x, y, out, x.numel(), BLOCK=block)
    return out


def tile_double(x, out=None, bm=4, bn=8):
    out = torch.empty(x.shape, dtype=x.dtype) if out is None else out
    M, N = x.shape
    _tile_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](x, out, M, N, *x.stride(), *out.stride(), BM=bm, BN=bn)
    return out


def vector_block(p, n, block):
    return set(range(p * block, min((p + 1) * block, n)))


# --------------------------------------------------------------------------- what is recorded


def test_vector_add_records_each_programs_elements():
    n, block = 21, 8
    x, y = torch.randn(n), torch.randn(n)
    with microscope.record() as rec:
        out = add(x, y, block=block)
    torch.testing.assert_close(out, x + y)
    (launch,) = rec.launches
    assert launch.kernel == "_add_kernel" and launch.grid == (3, 1, 1)
    assert [t.name for t in launch.tensors] == ["x_ptr", "y_ptr", "out_ptr"]
    assert launch.args == {"n": n, "BLOCK": block}
    for p in range(3):
        expected = vector_block(p, n, block)
        for name, kind in (("x", "load"), ("y", "load"), ("out", "store")):
            assert set(launch.elements(name, program=p, kind=kind).tolist()) == expected, (name, p)
        assert launch.elements("out", program=p, kind="load").size == 0  # out is never read
        assert [a.kind for a in launch.accesses_of(p)] == ["load", "load", "store"]
    assert rec.out_of_bounds() == []
    # Every element is read once: no program re-reads another's block.
    assert (launch.counts("x") == 1).all()


def test_masked_off_lanes_are_recorded_but_not_counted():
    n, block = 21, 8
    x, y = torch.randn(n), torch.randn(n)
    with microscope.record() as rec:
        add(x, y, block=block)
    last = rec.launches[0].accesses_of(2, kind="load")[0]
    assert last.masked and last.mask.tolist() == [True] * 5 + [False] * 3
    # The 3 masked-off lanes point past the end of x: no element, and no out-of-bounds access either.
    assert (last.tensor[5:] == -1).all() and not last.out_of_bounds.any()
    assert set(rec.launches[0].elements("x", program=2).tolist()) == {16, 17, 18, 19, 20}


def test_tile_kernel_records_2d_tiles():
    M, N, bm, bn = 6, 10, 4, 8
    x = torch.randn(M, N)
    with microscope.record() as rec:
        out = tile_double(x, bm=bm, bn=bn)
    torch.testing.assert_close(out, 2 * x)
    (launch,) = rec.launches
    assert launch.grid == (2, 2, 1)
    for i, j in itertools.product(range(2), range(2)):
        rows = range(i * bm, min((i + 1) * bm, M))
        cols = range(j * bn, min((j + 1) * bn, N))
        expected = {r * N + c for r in rows for c in cols}
        assert set(launch.elements("x", program=(i, j)).tolist()) == expected
        assert set(launch.elements("out", program=(i, j), kind="store").tolist()) == expected
    assert rec.out_of_bounds() == []


def test_strided_views_map_addresses_to_their_own_indices():
    base = torch.randn(8, 6)
    x = base.t()[1:5, ::2]  # shape (4, 4), strides (1, 12), not contiguous, inside base's storage
    assert x.stride() == (1, 12)
    out = torch.empty(4, 4)
    with microscope.record() as rec:
        tile_double(x, out, bm=2, bn=4)
    torch.testing.assert_close(out, 2 * x)
    launch = rec.launches[0]
    assert launch.tensor("x").stride == (1, 12) and not launch.tensor("x").is_contiguous()
    for i in range(2):
        expected = {r * 4 + c for r in range(2 * i, 2 * i + 2) for c in range(4)}  # row-major indices of x
        assert set(launch.elements("x", program=(i, 0)).tolist()) == expected
    assert rec.out_of_bounds() == []


def test_atomics_and_a_scalar_pointer_are_recorded():
    x, hist = torch.randn(10), torch.zeros(1)
    with microscope.record() as rec:
        _count_kernel[(2,)](x, hist, 10, BLOCK=8)
    assert hist.item() == 10
    launch = rec.launches[0]
    assert [a.kind for a in launch.accesses] == ["atomic", "atomic"]
    assert launch.counts("hist", kind="atomic").tolist() == [10]


# --------------------------------------------------------------------------- out of bounds


def test_unmasked_over_read_names_program_tensor_element_and_missing_mask():
    n = 21
    x, y = torch.randn(n), torch.randn(n)
    with microscope.record() as rec:
        out = add(x, y, kernel=_add_unmasked_load_kernel, block=8)
    torch.testing.assert_close(out, x + y)  # guarded: the lanes past the end were skipped
    (oob,) = rec.out_of_bounds()
    assert oob.program == (2, 0, 0) and oob.kind == "load" and oob.tensor.name == "y_ptr"
    assert oob.where == "past the end" and not oob.masked
    assert oob.first == (21,) and oob.last == (23,) and oob.count == 3
    assert "_add_unmasked_load_kernel, program 2, line" in oob.message
    assert "loads y[21] to y[23] (3 lanes): 1 to 3 elements past the end (y has 21 elements)" in oob.message
    assert "the mask is missing" in oob.message


def test_over_write_with_a_wrong_mask():
    n = 16
    x, y = torch.randn(n), torch.randn(n)
    sentinel = torch.full((n + 4,), 7.0)  # out is the start of a larger buffer: its storage goes on
    out = sentinel[:n]
    with microscope.record() as rec:
        _add_wrong_store_mask_kernel[(3,)](x, y, out, n, BLOCK=8)
    (oob,) = rec.out_of_bounds()
    assert oob.program == (2, 0, 0) and oob.kind == "store" and oob.tensor.name == "out_ptr"
    assert oob.first == (16,) and oob.masked
    assert "stores to out[16] (1 lane): one past the end (out has 16 elements)" in oob.message
    assert "the mask is wrong" in oob.message
    assert sentinel[n:].tolist() == [7.0] * 4  # the store was skipped (guard=True)
    # guard=False performs it, as the plain interpreter does: the element after out is overwritten.
    with microscope.record(guard=False) as rec:
        _add_wrong_store_mask_kernel[(3,)](x, y, out, n, BLOCK=8)
    assert len(rec.out_of_bounds()) == 1 and sentinel[n].item() == 0.0  # x and y are 0 there (masked loads)


def test_read_before_the_start():
    x = torch.randn(20)[4:]  # 16 elements, with 4 more in front in the same storage
    out = torch.empty(16)
    with microscope.record() as rec:
        _shift_left_kernel[(2,)](x, out, 16, BLOCK=8)
    (oob,) = rec.out_of_bounds()
    assert oob.program == (0, 0, 0) and oob.tensor.name == "x_ptr" and oob.where == "before the start"
    assert oob.first == (-1,) and oob.masked
    assert "loads x[-1] (1 lane): one before the start (x has 16 elements)" in oob.message


def test_a_2d_tile_without_its_row_mask_names_the_row_past_the_end():
    @triton.jit
    def no_row_mask(x_ptr, out_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
        rm = tl.program_id(0) * BM + tl.arange(0, BM)
        rn = tl.arange(0, BN)
        x = tl.load(x_ptr + rm[:, None] * N + rn[None, :], mask=rn[None, :] < N)  # BUG: rows not masked
        tl.store(out_ptr + rm[:, None] * N + rn[None, :], x, mask=(rm[:, None] < M) & (rn[None, :] < N))

    x, out = torch.randn(5, 3), torch.empty(5, 3)
    with microscope.record() as rec:
        no_row_mask[(2,)](x, out, 5, 3, BM=4, BN=4)
    (oob,) = rec.out_of_bounds()
    assert oob.program == (1, 0, 0) and oob.first == (5, 0) and oob.last == (7, 2) and oob.count == 9
    assert "index 7 of dimension 0 is past its end (size 5" in oob.message


def test_gaps_between_the_rows_of_a_strided_view_are_out_of_bounds():
    base = torch.randn(4, 8)
    x, out = base[:, :5], torch.empty(4, 5)
    with microscope.record() as rec:
        _rows_as_if_contiguous_kernel[(4,)](x, out, 5, BN=8)
    found = rec.out_of_bounds()
    assert {o.program[0] for o in found} == {1, 2, 3}  # row 0 happens to be right
    first = found[0]
    assert first.where == "between elements" and first.first == (0, 5) and first.last == (0, 7)
    assert "gaps of the strided view" in first.message and "x.stride(d)" in first.message
    # Every second column: the gaps lie inside each row, and no index names them.
    x, out = base[:, ::2], torch.empty(4, 4)
    with microscope.record() as rec:
        _rows_as_if_contiguous_kernel[(1,)](x, out, 4, BN=4)
    assert set(rec.launches[0].elements("x").tolist()) == {0, 1}  # offsets 0 and 2: x[0, 0], x[0, 1]
    (gap,) = rec.out_of_bounds()
    assert gap.where == "between elements" and gap.offsets.tolist() == [1, 3]
    assert "loads x + 1 to x + 3 (memory offsets in elements) (2 lanes): not elements of x" in gap.message


def test_check_kernel_rejects_a_missing_mask_and_passes_the_right_kernel():
    def right(x, y):
        return add(x, y)

    def missing_mask(x, y):
        return add(x, y, kernel=_add_unmasked_load_kernel)

    buf = io.StringIO()
    assert check_kernel(right, torch.add, shapes=[((21,), (21,))], file=buf), buf.getvalue()
    buf = io.StringIO()
    assert not check_kernel(missing_mask, torch.add, shapes=[((16,), (16,)), ((21,), (21,))], file=buf)
    text = buf.getvalue()
    assert "ok    case 1" in text  # 16 = 2 blocks of 8: nothing past the end
    assert "FAILED on case 2" in text and "outside the tensors it was given" in text
    assert "program 2" in text and "y[21] to y[23]" in text and "the mask is missing" in text


# --------------------------------------------------------------------------- minigrad's own kernels


def test_minigrad_matmul_reads_row_and_column_panels():
    matmul_kernels = backend.load_triton("matmul_kernels")
    rng = np.random.default_rng(0)
    M, K, N = 40, 20, 36  # ragged in both tile dimensions for every config
    cfg = matmul_kernels.pick_config(1, M, N, K)
    bm, bn = cfg.block_m, cfg.block_n
    row_tiles, col_tiles = -(-M // bm), -(-N // bn)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    with microscope.record() as rec:
        c = matmul_kernels.matmul(a, b)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    (launch,) = rec.launches
    assert launch.kernel == "matmul_kernel" and launch.grid == (row_tiles * col_tiles, 1, 1)
    tiles = set()
    for p in launch.programs:
        _, ra, ka = np.unravel_index(launch.elements("a", p), (1, M, K))
        _, kb, cb = np.unravel_index(launch.elements("b", p), (1, K, N))
        rows, cols = sorted(set(ra.tolist())), sorted(set(cb.tolist()))
        # A row panel: whole rows of a (every k), BLOCK_M rows starting at a multiple of BLOCK_M.
        assert rows == list(range(rows[0], min(rows[0] + bm, M))) and rows[0] % bm == 0
        assert ra.size == len(rows) * K
        # A column panel: whole columns of b.
        assert cols == list(range(cols[0], min(cols[0] + bn, N))) and cols[0] % bn == 0
        assert kb.size == len(cols) * K
        written = set(launch.elements("c", p, kind="store").tolist())
        assert written == {m * N + n for m in rows for n in cols}
        tiles.add((rows[0], cols[0]))
    assert tiles == {(i * bm, j * bn) for i in range(row_tiles) for j in range(col_tiles)}
    # Each element of a is read once per column tile of its row, each of b once per row tile: the
    # re-reads a tile kernel makes.
    assert (launch.counts("a") == col_tiles).all() and (launch.counts("b") == row_tiles).all()
    assert rec.out_of_bounds() == []


def test_minigrad_op_on_the_triton_path_is_recorded():
    with mg.use_kernels("triton"):
        x = mg.randn(5, 7, requires_grad=True)
        w = mg.randn(7, 3, requires_grad=True)
        with microscope.record() as rec:
            (x @ w).sum().backward()
    assert [launch.kernel for launch in rec.launches] == ["matmul_kernel"] * 3  # forward, dx, dw
    assert rec.out_of_bounds() == []


# --------------------------------------------------------------------------- drawing and the API


@pytest.mark.parametrize("mode", microscope.MODES)
def test_draw_produces_a_figure(mode):
    import matplotlib.pyplot as plt

    n = 21
    with microscope.record() as rec:
        add(torch.randn(n), torch.randn(n), kernel=_add_unmasked_load_kernel)
    fig = microscope.draw(rec, program=2, mode=mode)
    try:
        assert len(fig.axes) >= 3
        assert fig.axes[1].get_title().startswith("y (21,)")
        fig.canvas.draw()
    finally:
        plt.close(fig)
    fig, ax = plt.subplots()
    try:
        assert microscope.draw(rec.launches[0], program=[0, 1], tensors=["out"], ax=ax, mode=mode) is fig
    finally:
        plt.close(fig)


def test_access_map_marks_out_of_bounds_and_masked_lanes():
    n = 21
    with microscope.record() as rec:
        add(torch.randn(n), torch.randn(n), kernel=_add_unmasked_load_kernel)
    launch = rec.launches[0]
    codes, top, left, far = microscope._access_grid(launch, launch.tensor("y"), 2, 8)
    assert (top, left, far) == (0, 0, 0) and codes.shape == (3, 8)
    assert codes[2, 5:].tolist() == [5, 5, 5]  # y[21..23]: out of bounds
    codes, *_ = microscope._access_grid(launch, launch.tensor("x"), 2, 8)
    assert codes[2, :5].tolist() == [2] * 5 and codes[2, 5:].tolist() == [1, 1, 1]  # read, then masked off
    assert codes[:2].tolist() == [[0] * 8] * 2  # other programs' elements: untouched by program 2


def test_bad_arguments_are_explained():
    with microscope.record() as rec:
        add(torch.randn(4), torch.randn(4))
        add(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="no tensor argument 'z'"):
        rec.launches[0].counts("z")
    with pytest.raises(ValueError, match="holds 2 launches"):
        microscope.draw(rec)
    with pytest.raises(ValueError, match="mode must be one of"):
        microscope.draw(rec.launches[0], mode="heat")
    with pytest.raises(TypeError, match="program must be"):
        rec.launches[0].accesses_of("0")
    assert "2 launches" not in str(rec) and str(rec).count("_add_kernel, grid (1, 1, 1)") == 2


def test_patches_are_removed_after_the_block():
    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    before = dict(builder.__dict__)
    init_args = interpreter.GridExecutor._init_args_hst
    with pytest.raises(RuntimeError, match="boom"), microscope.record():
        raise RuntimeError("boom")
    assert builder.__dict__ == before and interpreter.GridExecutor._init_args_hst is init_args
    with microscope.record() as rec:
        pass
    add(torch.randn(4), torch.randn(4))  # outside the block: not recorded
    assert rec.launches == []


def test_minigrad_imports_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None; import minigrad, minigrad.microscope, minigrad.testing; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_element_index_of_broadcast_and_overlapping_layouts():
    def arg(t):
        return microscope._tensor_args(["t"], [t])[0]

    base = torch.arange(12.0)
    for view in (base.view(3, 4), base.view(3, 4).t(), base[1:].as_strided((3, 4), (2, 1)), base[:4].expand(3, 4)):
        t = arg(view)
        addresses = t.data_ptr + t.itemsize * np.arange(-2, 14)
        flat = t.element_index(addresses)
        # Each address that holds an element maps to an index whose element sits at that address.
        for address, i in zip(addresses, flat):
            if i >= 0:
                index = np.unravel_index(i, view.shape)
                assert view[index].data_ptr() == address
        expected_hits = {p for p in (view[idx].data_ptr() for idx in np.ndindex(*view.shape))}
        assert {int(a) for a, i in zip(addresses, flat) if i >= 0} == expected_hits
