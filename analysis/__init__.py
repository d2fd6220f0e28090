"""xitt analysis layer: scores.csv in, effects, intervals, tests and reports out."""
