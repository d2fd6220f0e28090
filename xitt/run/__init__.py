"""Running a grid: run folders, executors (local, pool, SLURM), progress, provenance, the plan."""
