"""Benchmarks: `make bench` (run.py: load steps against Redis + the service) and micro.py.

Run from the repository root with the project's venv: `python -m bench.run`,
`python -m bench.micro`. Results go to bench-results/ (git-ignored). See
docs/benchmarks.md for the figures, the machine and what each one means.
"""
