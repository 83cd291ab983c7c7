"""ANN recipes shared by methods: methods naming the same recipe share one trained ANN."""

from __future__ import annotations

from torch import nn

from snnbench_suite import AnnRecipe

# A plain ReLU network with BN, average pooling: what naive, robust and calib convert.
RELU_BN = AnnRecipe(name="relu_bn", version="1", activation=nn.ReLU, batch_norm=True)
