"""`python scripts/bench_schmidt.py [--quick]`: see advrepro.bench.bench_schmidt."""

import sys

import pandas as pd

from advrepro.bench import bench_schmidt

if __name__ == "__main__":
    print(pd.DataFrame(bench_schmidt(quick="--quick" in sys.argv)).to_string(index=False))
