"""What every result records beside its numbers: versions, device, git commit, times."""

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = (
    "advrepro",
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "hydra-core",
    "omegaconf",
    "typer",
    "matplotlib",
)


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@functools.cache
def git_commit() -> str:
    """HEAD of the checkout advrepro runs from, with `+dirty` for uncommitted tracked changes."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + ("+dirty" if commit and dirty else "")


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
