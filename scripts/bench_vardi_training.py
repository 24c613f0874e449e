"""Training steps per second of vardi-universal at d=500, n=100, width=100: `python scripts/bench_vardi_training.py [--quick]`."""

import sys

import pandas as pd

from advrepro.bench import bench_vardi_training

if __name__ == "__main__":
    print(pd.DataFrame(bench_vardi_training(quick="--quick" in sys.argv)).to_string(index=False))
