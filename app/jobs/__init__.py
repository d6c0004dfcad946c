"""Evaluation jobs: the runner, one module per kind, zip inspection and the job rows."""
