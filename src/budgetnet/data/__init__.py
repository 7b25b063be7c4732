"""CIFAR-10 loading, caching and the offline augmentation store."""
