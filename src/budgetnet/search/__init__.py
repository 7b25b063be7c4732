"""Budget-constrained architecture search over the ResNet design space, with Optuna as the engine."""
