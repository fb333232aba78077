"""The one conversion pipeline, its batches and its Ray cluster path."""
