"""CIFAR-10 loading, caching and the offline augmentation store."""

from budgetnet.data.augment import online_augment
from budgetnet.data.cache import default_cache_dir
from budgetnet.data.dataset import CifarData
from budgetnet.data.loader import load_cifar
from budgetnet.data.store import AugmentedStore, load_or_build_store

__all__ = ["AugmentedStore", "CifarData", "default_cache_dir", "load_cifar", "load_or_build_store", "online_augment"]
