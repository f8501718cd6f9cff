"""Model backends (batched generation) and model specs."""
