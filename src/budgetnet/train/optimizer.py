"""The SGD optimiser a recipe asks for: which parameters train, and at what lr and weight decay each."""

from __future__ import annotations

import torch
from torch import nn

from budgetnet.train.recipe import Recipe


def freeze_bn_scales(model: nn.Module) -> None:
    """Stop every BatchNorm scale from training; it stays at its current value (1 after init)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
            module.weight.requires_grad_(False)


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """SGD over the model's trainable parameters: BatchNorm biases in a group of their own when
    `recipe.bn_bias_lr` is not 1 (lr x bn_bias_lr, weight decay / bn_bias_lr, so the decay per step is
    unchanged), everything else at the recipe's lr. Each group's `lr_scale` is what the step's lr is
    multiplied by (see train_step); the main group comes first."""
    if recipe.freeze_bn_scale:
        freeze_bn_scales(model)
    bn_biases = {id(m.bias) for m in model.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": trainable, "lr_scale": 1.0, "weight_decay": recipe.weight_decay}]
    if recipe.bn_bias_lr != 1.0:
        groups = [
            {"params": [p for p in trainable if id(p) not in bn_biases], "lr_scale": 1.0,
             "weight_decay": recipe.weight_decay},
            {"params": [p for p in trainable if id(p) in bn_biases], "lr_scale": recipe.bn_bias_lr,
             "weight_decay": recipe.weight_decay / recipe.bn_bias_lr},
        ]
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
