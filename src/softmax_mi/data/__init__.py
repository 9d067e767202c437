"""Datasets: synthetic tasks with known mutual information (and, later, image datasets)."""
