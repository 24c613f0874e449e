"""Data sets the experiments read."""
