"""Kits only tests (and the benchmarks) use: the recordings lab and its memory probe."""
