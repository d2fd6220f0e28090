"""The grid: grid.yaml -> GridSpec -> stages and runs."""
