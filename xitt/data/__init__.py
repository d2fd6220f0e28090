"""Task data: where each split comes from and how it is read."""
