"""minigrad's ops, one module per family.

Each module holds the math in its docstring, the NumPy forward/backward and the
:class:`~minigrad.function.Function`; ops with Triton kernels keep them in a
``*_kernels.py`` twin that is imported only when the Triton path runs (so
minigrad imports where triton is absent).

Names:

* every Function class is ``<Op>Function`` (``Conv2dFunction``, ``AddFunction``), so that none is
  named like the ``nn`` Module that uses it (``nn.Conv2d``); errors and ``grad_fn`` reprs print the
  op's name without the suffix (``<Conv2dBackward>``);
* an op with Triton kernels has one :class:`~minigrad.backend.Implementation` (``forward``,
  ``backward``) per kernel path, under the same name in both modules (``conv.CONV2D``,
  ``conv_kernels.CONV2D``), with the same signatures and saved-state layout; the Function gets the
  one to run from ``ctx.implementation(CONV2D, "conv_kernels.CONV2D")``;
* Triton kernels are ``<op>_forward_kernel`` / ``<op>_backward_kernel`` and their stride arguments
  ``stride_<tensor><dim>`` (see :mod:`minigrad.ops.triton_common`, which holds what the kernel
  modules share);
* each op's argument check is ``<op>_geometry`` (``conv2d_geometry``, ``max_pool2d_geometry``), and
  :func:`minigrad.ops.arguments.pair` reads the int-or-pair arguments of both.
"""
