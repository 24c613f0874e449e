"""`python scripts/bench_pgd.py [--quick]`: see advrepro.bench.bench_pgd."""

import sys

import pandas as pd

from advrepro.bench import bench_pgd

if __name__ == "__main__":
    print(pd.DataFrame(bench_pgd(quick="--quick" in sys.argv)).to_string(index=False))
