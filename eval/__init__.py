"""Evaluation: metrics, baselines, benchmarks."""
