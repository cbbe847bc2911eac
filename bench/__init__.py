"""Benchmarks (reported, never asserted). `python -m bench.ledger [--quick]`; results go to bench/results/."""
