"""`python scripts/bench_separation.py [--quick]`: see advrepro.bench.bench_separation."""

import sys

import pandas as pd

from advrepro.bench import bench_separation

if __name__ == "__main__":
    print(pd.DataFrame(bench_separation(quick="--quick" in sys.argv)).to_string(index=False))
