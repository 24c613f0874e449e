"""`python scripts/bench_adversarial_training.py [--quick]`: see advrepro.bench.bench_adversarial_training."""

import sys

import pandas as pd

from advrepro.bench import bench_adversarial_training

if __name__ == "__main__":
    print(pd.DataFrame(bench_adversarial_training(quick="--quick" in sys.argv)).to_string(index=False))
