"""Benchmarks, soak and hostile-input runs: each a module with a `main()` that prints its figures.
Run one as `scripts/bench NAME [options]` (`scripts/bench --help` lists them)."""
