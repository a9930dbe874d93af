"""Benchmarks of the C kernels on microcontroller targets (instruction counts in an emulator)."""
