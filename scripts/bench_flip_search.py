"""Exact flip search vs the papers' 0.001 walk vs grid + refinement, same rays, one run: `python scripts/bench_flip_search.py [--quick]`."""

import sys

from advrepro.bench import bench_flip_search

if __name__ == "__main__":
    import pandas as pd

    print(pd.DataFrame(bench_flip_search(quick="--quick" in sys.argv)).to_string(index=False))
