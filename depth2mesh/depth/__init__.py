"""Depth from a photo: the model registry, weights, cache, preprocessing, runtimes, evaluation.

``networks/`` holds one module per depth network (a torch-free description) and its PyTorch
implementation beside it.
"""
