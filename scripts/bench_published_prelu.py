"""`python scripts/bench_published_prelu.py CODE_DIR [--write-reference]`: the published code against advrepro.

Runs Min & Vidal's `prelu_f_dist.py` from a checkout of GitHub hanchmin/pReLU_ICML24 at CODE_DIR (nothing of it is
imported or copied: it runs as its own process, with a config this script writes from
`cluster_robustness.PUBLISHED_CODE_SETTING`), then advrepro's cells at the same setting, in one run; prints both wall
times and their ratio and writes them to results/bench-published-prelu.csv. `--write-reference` also rewrites
advrepro/reference/prelu_f_dist_reduced.csv, the curve the `published-code-*` claims compare with.

The published code needs no change for current torch when its plotting stage is off (`plot: run: False`): only
`generate_plot` loads pickled numpy arrays, which `torch.load` refuses since torch 2.6 without weights_only=False.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advrepro.experiments.cluster_robustness.claims import PUBLISHED_CODE_CURVE, PUBLISHED_CODE_SETTING
from advrepro.experiments.cluster_robustness.runner import ClusterConfig, run

EXP_NAME = "advrepro_reference"


def published_config(s: dict) -> str:
    """prelu_f_dist.py's YAML for the setting: one noise level (sigma_list of length 1), its robustness panel."""
    return f"""train:
    run: True
    D: {s["d"]}
    k: {s["k"]}
    k1: {s["k_pos"]}
    save_model: 0
    n_train: {s["n_train"]}
    n_test: {s["n_test"]}
    repeat: {s["runs"]}
    sigma_list: [{s["noise"]}, {s["noise"]}, 1]
    epsilon_list: [0.0, {s["eps_max"]}, {s["eps_steps"]}]
train_opt:
    batch_size: {s["batch_size"]}
    max_epoch: {s["epochs"]}
    lr: {s["lr"]}
train_net:
    hidden_width: {s["width"]}
    init_scale: {s["init_scale"]:.6e}  # a dot in the mantissa: PyYAML reads 1e-07 as a string
train_dist:
    batch_size_dist: {s["dist_starts"]}
    batch_num_dist: 1
plot:
    run: False
"""


def main(code_dir: Path, write_reference: bool) -> pd.DataFrame:
    s = PUBLISHED_CODE_SETTING
    assert s["dist_samples"] == s["dist_starts"], "the code draws c's samples in batches of batch_size_dist"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "reference.yaml"
        config.write_text(published_config(s))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "prelu_f_dist.py", "--config", str(config), "--exp_name", EXP_NAME],
            cwd=code_dir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        published_seconds = time.perf_counter() - start
    accuracy = torch.load(
        code_dir / "exps" / EXP_NAME / "saves" / "robust_acc.pt"
    ).numpy()  # (runs, p, radii)
    start = time.perf_counter()
    for p in (1, 3):
        run(ClusterConfig(**s, p=p, restarts=0, progress=False), torch.device("cpu"))
    ours_seconds = time.perf_counter() - start
    if write_reference:
        radii = np.linspace(0, s["eps_max"], s["eps_steps"])
        curve = [
            {"p": p, "run": r, "eps": round(float(e), 6), "robust_acc": round(float(accuracy[r, i, j]), 4)}
            for i, p in enumerate((1, 3))
            for r in range(accuracy.shape[0])
            for j, e in enumerate(radii)
        ]
        pd.DataFrame(curve).to_csv(PUBLISHED_CODE_CURVE, index=False)
    setting = "d={d}, k={k}, width={width}, n={n_train}, {epochs} epochs, {runs} runs, p ∈ {{1, 3}}".format(
        **s
    )
    rows = pd.DataFrame(
        [
            {"program": "published prelu_f_dist.py", "setting": setting, "seconds": published_seconds},
            {
                "program": "advrepro cluster-robustness, restarts=0",
                "setting": setting,
                "seconds": ours_seconds,
            },
        ]
    )
    rows["ratio_to_advrepro"] = rows["seconds"] / ours_seconds
    Path("results").mkdir(exist_ok=True)
    rows.to_csv("results/bench-published-prelu.csv", index=False)
    return rows


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(arguments) != 1 or not (Path(arguments[0]) / "prelu_f_dist.py").is_file():
        print("usage: python scripts/bench_published_prelu.py CODE_DIR [--write-reference]", file=sys.stderr)
        print(
            "  CODE_DIR: a checkout of github.com/hanchmin/pReLU_ICML24 (holding prelu_f_dist.py)",
            file=sys.stderr,
        )
        sys.exit(2)
    print(main(Path(arguments[0]).resolve(), "--write-reference" in sys.argv).to_string(index=False))
