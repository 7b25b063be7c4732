"""Shipping a trained model: predict on image files, ONNX export, int8 quantization, model card.

Import the submodules directly; this package imports nothing heavy so `budgetnet --help` stays fast.
"""
