"""minigrad's ops, one module per family.

Each module holds the math in its docstring, the NumPy forward/backward and the
:class:`~minigrad.function.Function`; ops with Triton kernels keep them in a
``*_kernels.py`` twin that is imported only when the Triton path runs (so
minigrad imports where triton is absent).
"""
