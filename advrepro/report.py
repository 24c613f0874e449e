"""results/REPORT.md and a self-contained results/report.html from the CSVs and figures of a results directory."""

import base64
import html
from pathlib import Path

import pandas as pd

from advrepro.claims import VERDICTS
from advrepro.config import provenance_tags
from advrepro.errors import UserError
from advrepro.experiments import EXPERIMENTS
from advrepro.provenance import package_versions
from advrepro.store import atomic_write_bytes, read_claims

README_BEGIN = "<!-- claims:begin (written by `advrepro report --readme README.md`) -->"
README_END = "<!-- claims:end -->"
BENCH_BEGIN = "<!-- bench:begin (written by `advrepro report --readme README.md` from results/bench.csv) -->"
BENCH_END = "<!-- bench:end -->"


def display_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """claims.csv as a reader sees it: the prediction with its tag, the measured value with its interval."""

    def measured(row) -> str:
        if row["measured"] == "":
            return "—"
        interval = f" [{row['ci_low']}, {row['ci_high']}]" if row["ci_low"] != "" else ""
        return f"{row['measured']}{interval} ({row['units']})"

    return pd.DataFrame(
        {
            "experiment": claims["experiment"],
            "kind": claims["kind"],
            "claim": claims["claim"],
            "prediction": (claims["prediction"] + " " + claims["source"]).str.strip(),
            "tolerance": claims["tolerance"],
            "measured [95% CI]": claims.apply(measured, axis=1) if len(claims) else [],
            "verdict": claims["verdict"],
            "why": claims["reason"],
        }
    )


def summary(claims: pd.DataFrame) -> str:
    """One screen: verdict counts of the claims per experiment, how the checks came out, then every `differs` row."""
    tested = claims[claims["kind"] == "claim"]
    counts = tested.groupby(["experiment", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[v for v in VERDICTS if v in counts.columns])
    checks = claims[claims["kind"] == "check"]["verdict"].value_counts()
    lines = [
        f"Claims (results/claims.csv): {len(tested)} claims of the papers, "
        f"{int((claims['kind'] == 'check').sum())} checks of our implementation "
        f"({', '.join(f'{n} {v}' for v, n in checks.items()) or 'none'}), "
        f"{int((claims['kind'] == 'reported').sum())} reported values.",
        counts.to_string(),
        "",
    ]
    differs = claims[(claims["verdict"] == "differs") & (claims["kind"] != "reported")]
    lines.append(f"{len(differs)} rows differ:" if len(differs) else "No claim or check differs.")
    for row in differs.itertuples(index=False):
        lines.append(
            f"- {row.experiment} ({row.kind}): {row.claim}: predicted {row.prediction} {row.source}, "
            f"measured {row.measured} [{row.ci_low}, {row.ci_high}]"
        )
    return "\n".join(lines)


def verdict_changes(before: pd.DataFrame, after: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The claims whose verdict differs between two claims tables (say the committed CPU one and a GPU run's), matched
    by experiment and id (a row in one table only has the verdict 'absent' in the other): a one-line summary and the
    differing rows with both verdicts and measured values."""
    keys = ["experiment", "id"]
    columns = [*keys, "verdict", "measured"]
    both = before[columns].merge(after[columns], on=keys, how="outer", suffixes=("_before", "_after"))
    both[["verdict_before", "verdict_after"]] = both[["verdict_before", "verdict_after"]].fillna("absent")
    changed = both[both["verdict_before"] != both["verdict_after"]].reset_index(drop=True)
    line = f"{len(both) - len(changed)} of {len(both)} rows have the same verdict"
    if len(changed):
        line += f"; {len(changed)} differ: " + ", ".join(changed["experiment"] + "/" + changed["id"])
    return line, changed


def display_bench(bench: pd.DataFrame) -> pd.DataFrame:
    """bench.csv as a reader sees it: what was timed, and each row's measured columns as name = value."""
    described = ["benchmark", "setting", "method"]
    measured = bench.drop(columns=described).apply(
        lambda row: ", ".join(
            f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in row.dropna().items()
        ),
        axis=1,
    )
    return bench[described].assign(measured=measured if len(bench) else [])


def replace_section(text: str, begin: str, end: str, body: str, readme: Path) -> str:
    if begin not in text or end not in text:
        raise UserError(f"{readme} has no markers for a generated table: add the lines {begin!r} and {end!r}")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def update_readme(readme: Path, claims: pd.DataFrame, bench: pd.DataFrame | None = None) -> None:
    """Replace the claims table (and, given bench.csv's rows, the benchmark table) between the README's markers."""
    text = replace_section(
        readme.read_text(), README_BEGIN, README_END, markdown_table(display_claims(claims)), readme
    )
    if bench is not None:
        text = replace_section(text, BENCH_BEGIN, BENCH_END, markdown_table(display_bench(bench)), readme)
    atomic_write_bytes(readme, text.encode())


def markdown_table(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda value: str(value).replace("|", "\\|"))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)])


def experiment_sections(results: Path) -> list[dict]:
    """Per experiment with results: title, figures, compute time, environment, inferred values."""
    sections = []
    for name, exp in EXPERIMENTS.items():
        cells_path = results / f"{name}.cells.csv"
        if not cells_path.is_file():
            continue
        cells = pd.read_csv(cells_path)
        tags = provenance_tags(name)
        inferred = pd.DataFrame(
            [
                {"key": k, "tag": f"[{t}]", "note": note}
                for k, (t, note) in tags.items()
                if t in ("inferred", "unknown")
            ]
        )
        sections.append(
            {
                "name": name,
                "title": exp.title,
                "reproduces": exp.reproduces,
                "figures": [
                    results / "figures" / f"{fig}.png"
                    for fig in exp.figures
                    if (results / "figures" / f"{fig}.png").is_file()
                ],
                "cells": len(cells),
                "seconds": float(cells["wall_time_s"].sum()),
                "devices": ", ".join(sorted(cells["device"].astype(str).unique())),
                "commits": ", ".join(sorted(cells["git_commit"].astype(str).unique())),
                "inferred": inferred,
            }
        )
    return sections


def write_report(results: str | Path) -> list[Path]:
    results = Path(results)
    sections = experiment_sections(results)
    claims_path = results / "claims.csv"
    claims = read_claims(claims_path) if claims_path.is_file() else pd.DataFrame()
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    md = ["# advrepro report", "", f"Environment of this report: {versions}.", ""]
    body = [f"<h1>advrepro report</h1><p>Environment of this report: {html.escape(versions)}.</p>"]
    for s in sections:
        meta = (
            f"{s['cells']} cells, {s['seconds']:.0f} s of compute; device: {s['devices']}; "
            f"git commit: {s['commits']}"
        )
        md += [f"## {s['name']}: {s['title']}", "", f"Reproduces: {s['reproduces']}.", "", meta, ""]
        body.append(
            f"<h2>{html.escape(s['name'])}: {html.escape(s['title'])}</h2>"
            f"<p>Reproduces: {html.escape(s['reproduces'])}.</p><p>{html.escape(meta)}</p>"
        )
        for fig in s["figures"]:
            caption_file = fig.with_suffix(".caption.txt")
            caption = caption_file.read_text().strip() if caption_file.is_file() else fig.stem
            md += [f"![{fig.stem}](figures/{fig.name})", "", f"*{caption}*", ""]
            data = base64.b64encode(fig.read_bytes()).decode()
            body.append(
                f'<figure><img style="max-width:100%" alt="{fig.stem}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        part = claims[claims["experiment"] == s["name"]] if len(claims) else claims
        part = display_claims(part).drop(columns="experiment")
        if len(part):
            md += ["### Claims", "", markdown_table(part), ""]
            body.append("<h3>Claims</h3>" + part.to_html(index=False, escape=True))
        if len(s["inferred"]):
            md += ["### Inferred and unknown values", "", markdown_table(s["inferred"]), ""]
            body.append(
                "<h3>Inferred and unknown values</h3>" + s["inferred"].to_html(index=False, escape=True)
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>advrepro report</title><style>{style}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )
    paths = [results / "REPORT.md", results / "report.html"]
    atomic_write_bytes(paths[0], "\n".join(md).encode())
    atomic_write_bytes(paths[1], page.encode())
    return paths
