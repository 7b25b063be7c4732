"""The optimiser a recipe asks for: which parameters train, and at what lr and weight decay each."""

from __future__ import annotations

import torch
from torch import nn

from budgetnet.train.muon import Muon
from budgetnet.train.recipe import Recipe


def freeze_bn_scales(model: nn.Module) -> None:
    """Stop every BatchNorm scale from training; it stays at its current value (1 after init)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
            module.weight.requires_grad_(False)


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (or Muon) over the model's trainable parameters. BatchNorm biases get a group of their own when
    `recipe.bn_bias_lr` is not 1 (lr x bn_bias_lr, weight decay / bn_bias_lr, so the decay per step is
    unchanged); with `recipe.optimizer` "muon" the trained conv filters get one with the Muon step
    (lr muon_lr, no weight decay). Each group's `lr_scale` is what the step's lr is multiplied by (see
    train_step); the main group comes first."""
    if recipe.freeze_bn_scale:
        freeze_bn_scales(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    bn_biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and m.bias is not None and m.bias.requires_grad} if recipe.bn_bias_lr != 1.0 else set()
    filters = {id(m.weight) for m in model.modules()
               if isinstance(m, nn.Conv2d) and m.weight.requires_grad} if recipe.optimizer == "muon" else set()
    main = [p for p in trainable if id(p) not in bn_biases | filters]
    groups = [{"params": main, "lr_scale": 1.0, "weight_decay": recipe.weight_decay}]
    if bn_biases:
        groups.append({"params": [p for p in trainable if id(p) in bn_biases], "lr_scale": recipe.bn_bias_lr,
                       "weight_decay": recipe.weight_decay / recipe.bn_bias_lr})
    if filters:
        groups.append({"params": [p for p in trainable if id(p) in filters], "lr_scale": recipe.muon_lr / recipe.lr,
                       "weight_decay": 0.0, "orthogonal": True})
        return Muon(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
