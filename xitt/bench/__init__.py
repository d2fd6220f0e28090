"""Benchmarks (`xitt bench`): printed, never asserted; nothing in the runner imports them."""
