"""The training chain: intermediate stage, target training, zero-shot evaluation; heads and metrics."""
