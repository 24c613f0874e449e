"""`python scripts/bench_lazy_training.py [--quick]`: see advrepro.bench.bench_lazy_training."""

import sys

import pandas as pd

from advrepro.bench import bench_lazy_training

if __name__ == "__main__":
    print(pd.DataFrame(bench_lazy_training(quick="--quick" in sys.argv)).to_string(index=False))
