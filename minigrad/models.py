"""LeNet-5: two convolution + pooling stages and three fully connected layers.

LeCun et al. (1998) built it to read handwritten digits; this is the modern form
found in PyTorch tutorials (ReLU instead of the scaled tanh, max pooling instead of
trainable subsampling, a plain 10-way linear output instead of RBF units).

Shapes for one 1x28x28 image (N = batch size)::

    input                               (N,  1, 28, 28)
    conv1  5x5, 6 filters, padding 2    (N,  6, 28, 28)   + ReLU
    max_pool 2x2                        (N,  6, 14, 14)
    conv2  5x5, 16 filters              (N, 16, 10, 10)   + ReLU
    max_pool 2x2                        (N, 16,  5,  5)
    flatten                             (N, 400)
    fc1    400 -> 120                   (N, 120)          + ReLU
    fc2    120 -> 84                    (N, 84)           + ReLU
    fc3    84 -> 10                     (N, 10)           logits (CrossEntropyLoss applies the softmax)

61,706 parameters.  (The 1998 network took 32x32 inputs without padding; padding
conv1 by 2 gives the same 28x28 feature map from MNIST's 28x28 images.)

The attribute names make ``state_dict()`` keys ``conv1.weight``, ``conv1.bias``, ...,
``fc3.bias`` -- the same as this PyTorch definition, which therefore loads a
checkpoint exported by ``python -m minigrad export`` with ``load_state_dict``::

    import torch
    from torch import nn
    import torch.nn.functional as F

    class LeNet5(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    model = LeNet5()
    model.load_state_dict(torch.load("lenet5.pt"))
"""

from __future__ import annotations

from . import nn
from .nn import functional as F
from .tensor import Tensor


class LeNet5(nn.Module):
    """LeNet-5 for (N, 1, 28, 28) images; see the module docstring."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"LeNet5: expected images of shape (N, 1, 28, 28), got {x.shape}")
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 16, 5, 5)
        x = x.flatten(1)  # (N, 400)
        x = F.relu(self.fc1(x))  # (N, 120)
        x = F.relu(self.fc2(x))  # (N, 84)
        return self.fc3(x)  # (N, num_classes) logits


ARCHITECTURES = {"LeNet5": LeNet5}

__all__ = ["ARCHITECTURES", "LeNet5"]
