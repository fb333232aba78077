"""The depth networks: one torch-free description each, the PyTorch code imported lazily."""
