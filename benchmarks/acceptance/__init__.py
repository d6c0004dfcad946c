"""The checks of ``benchmarks/gpu_acceptance.py``, one module per part of the system."""
