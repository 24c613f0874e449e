"""Results on disk: one directory per sweep cell, written atomically, complete only once `meta.json` is.

Layout of a results directory RESULTS:
- RESULTS/runs/EXPERIMENT/HASH/{config.yaml, rows.csv, meta.json}: the cells, a cache shared by every command;
- RESULTS/advrepro.json: the results format and the reference scale (the scale of the first preset-grid run);
- outputs (aggregates EXPERIMENT.csv and EXPERIMENT.cells.csv, claims.csv, figures/) of the reference scale's preset
  grids at the top level (what `make figures` writes and the README embeds), of another scale's preset grids under
  RESULTS/scale-SCALE/, and of any other command under RESULTS/adhoc/EXPERIMENT/LABEL/ (`outputs_dir`).
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

FLOAT_FORMAT = "%.9g"
FORMAT = 2  # the layout above; a results directory marked with another format is refused, not mixed
MARKER = "advrepro.json"
_UMASK = os.umask(0)
os.umask(_UMASK)


def cell_hash(identity: dict[str, Any]) -> str:
    """A short stable name for what a cell computes (dora-style signature)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would make results private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format=FLOAT_FORMAT).encode()


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_bytes(path, csv_bytes(df))


def cell_dir(results_dir: str | Path, experiment: str, digest: str) -> Path:
    return Path(results_dir) / "runs" / experiment / digest


def read_meta(directory: Path) -> dict[str, Any] | None:
    """The cell's meta if the cell is complete and intact (rows.csv matches the checksum meta recorded)."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        rows = (directory / "rows.csv").read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("rows_sha256") != hashlib.sha256(rows).hexdigest():
        return None
    return meta


def write_cell(directory: Path, config: dict[str, Any], rows: pd.DataFrame, meta: dict[str, Any]) -> None:
    """config.yaml and rows.csv first, meta.json (with the rows' checksum) last: the completion mark. A failed
    write removes the cell's files again."""
    data = csv_bytes(rows)
    meta = {**meta, "rows": len(rows), "rows_sha256": hashlib.sha256(data).hexdigest()}
    files = {
        "config.yaml": OmegaConf.to_yaml(config).encode(),
        "rows.csv": data,
        "meta.json": json.dumps(meta, indent=2, default=str).encode(),
    }
    try:
        for name, content in files.items():
            atomic_write_bytes(directory / name, content)
    except (
        OSError
    ):  # a full disk, say: leave no part of the cell behind (it is missing, and recomputed next time)
        for name in files:
            (directory / name).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stamp_path(results_dir: str | Path, name: str) -> Path:
    return Path(results_dir) / f".{name}.stamp.json"


def write_stamp(
    results_dir: str | Path, name: str, outputs: tuple[Path, ...], inputs: dict[str, Any]
) -> None:
    """Record what `outputs` were made from (`inputs`) and their checksums, so an unchanged rerun can skip them."""
    stamp = {"inputs": inputs, "outputs": {str(p): file_sha256(p) for p in outputs}}
    atomic_write_bytes(stamp_path(results_dir, name), json.dumps(stamp, sort_keys=True).encode())


def read_stamp(results_dir: str | Path, name: str, outputs: tuple[Path, ...]) -> dict[str, Any] | None:
    """The inputs the outputs were made from, if every output is still there as it was written; else None."""
    try:
        stamp = json.loads(stamp_path(results_dir, name).read_text())
    except (OSError, ValueError):
        return None
    same = set(stamp.get("outputs", {})) == {str(p) for p in outputs}
    if not same or any(file_sha256(Path(p)) != sha for p, sha in stamp["outputs"].items()):
        return None
    return stamp.get("inputs")


def read_rows(directory: Path) -> pd.DataFrame:
    return pd.read_csv(directory / "rows.csv")


def read_claims(path: Path) -> pd.DataFrame:
    """claims.csv as text, for display (empty cells stay empty strings)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def update_claims(results_dir: str | Path, experiment: str, claims: pd.DataFrame, order: list[str]) -> Path:
    """Replace this experiment's rows of claims.csv, keep the others' (unless written with other columns, by an
    older version: those are dropped, and rewritten when their experiment runs). Experiments appear in `order`
    (the registry's), so the file does not depend on the order the commands ran in."""
    path = Path(results_dir) / "claims.csv"
    old = read_claims(path) if path.is_file() else pd.DataFrame(columns=claims.columns)
    if list(old.columns) != list(claims.columns):
        old = pd.DataFrame(columns=claims.columns)
    merged = pd.concat([old[old["experiment"] != experiment], claims], ignore_index=True)
    rank = {name: i for i, name in enumerate(order)}
    merged = merged.sort_values(
        "experiment", key=lambda names: names.map(rank).fillna(len(rank)), kind="stable"
    )
    atomic_write_csv(path, merged.reset_index(drop=True))
    return path


def cell_status(directory: Path) -> str:
    """complete (meta.json matches rows.csv), corrupted (meta.json there but unreadable or not matching), missing."""
    if read_meta(directory) is not None:
        return "complete"
    return "corrupted" if (directory / "meta.json").exists() else "missing"


def read_marker(results_dir: str | Path) -> dict[str, Any]:
    try:
        marker = json.loads((Path(results_dir) / MARKER).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        marker = {"format": "unreadable"}
    return marker if isinstance(marker, dict) else {"format": "unreadable"}


def check_results_dir(results_dir: str | Path) -> None:
    """UserError (nothing written) when results_dir cannot hold results: a path that is not a directory, a
    directory this user cannot write, or one written in another results format."""
    from advrepro.errors import UserError

    path = Path(results_dir)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise UserError(f"results_dir {path} is not a directory ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"results_dir {path} is not writable ({existing} does not allow writing)")
    found = read_marker(path).get("format", FORMAT)
    if found != FORMAT:
        raise UserError(
            f"results_dir {path} holds results format {found}, this advrepro writes format {FORMAT}: "
            "choose another results_dir (or move the old one away)"
        )


def outputs_dir(results_dir: str | Path, scale: str, preset: bool, label: str) -> Path:
    """Where a command's aggregates, claims and figures go (the module docstring's layout); the reference scale is
    the recorded one, or `scale` when none is recorded yet."""
    if not preset:
        return Path(results_dir) / "adhoc" / label
    reference = read_marker(results_dir).get("reference_scale", scale)
    return Path(results_dir) if scale == reference else Path(results_dir) / f"scale-{scale}"


def mark_results_dir(results_dir: str | Path, scale: str, preset: bool) -> None:
    """Write the marker on first use; the first preset-grid run sets the reference scale."""
    marker = read_marker(results_dir)
    wanted = {"format": FORMAT, **marker}
    if preset and "reference_scale" not in marker:
        wanted["reference_scale"] = scale
    if wanted != marker:
        atomic_write_bytes(Path(results_dir) / MARKER, json.dumps(wanted, indent=2, sort_keys=True).encode())
