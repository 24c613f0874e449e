"""zhu-stability: the claims (pandas): which rows each claim rests on, and the paper's predictions against them."""

import math

import numpy as np
import pandas as pd

from advrepro.claims import MIN_ACCURACY, MIN_EFFECT, Band, check, claim, reported, trend
from advrepro.experiments.zhu_stability.runner import INITS, NAME, ball_abs_moment
from advrepro.stats import (
    Estimate,
    describe_units,
    resampled_means,
    slope_estimate,
    statistic_estimate,
    unit_means,
    with_cell_keys,
)

DEPTH_TREND = {"lecun": "down", "he": "up", "ntk": "up"}


MIN_NETWORKS = 3  # ours: a trained cell with fewer trained networks supports no trend
VALUE_TOLERANCE = 0.05  # ours: relative, on the mean P/ε at initialisation against its derived value
RESCALING_TOLERANCE = 1e-4  # ours: float32 rounding of an exact identity


def init_value(init: str, p: int, depth: int) -> float:
    """P/ε at initialisation [derived, docs §7]: √2·E|u₁| under He (E‖∇f‖² = 2 at every width and depth); with
    the same draws LeCun is He scaled by 2^(−1/2) in each of its L weight matrices, and NTK is He·√(p/2)."""
    he = math.sqrt(2) * ball_abs_moment(p)
    return {"he": he, "lecun": he * 2 ** (-depth / 2), "ntk": he * math.sqrt(p / 2)}[init]


def init_claims(rows: pd.DataFrame) -> list[dict]:
    """At initialisation the paper's trend table does not apply (it bounds trained, lazy networks); what holds follows
    from ReLU homogeneity with the same draws: He's value, LeCun and NTK as exact rescalings of it, no width trend,
    and depth slopes −½·ln 2 per layer (LeCun) and 0 (He, NTK)."""
    own = rows[rows["regime"] == "init"]
    he = own[own["init"] == "he"]
    if he.empty:
        return []
    he = he.assign(
        ratio=he["p_over_eps"] / [init_value("he", p, L) for p, L in zip(he["p"], he["depth"], strict=True)]
    )
    cells = [g["ratio"].to_numpy() for _, g in he.groupby(["width", "depth"])]
    per_cell = he.groupby(["width", "depth"])["ratio"].mean()
    value = Estimate.from_draws(
        float(np.mean([c.mean() for c in cells])),
        resampled_means(cells).mean(1),
        describe_units(cells, "networks", "cell")[0],
        len(he),
    )
    out = [
        claim(
            NAME,
            "value-he-init",
            statement="mean over (width, depth) cells of P/ε ÷ √2·E|u₁| (he, init)",
            prediction="1: P/ε = √2·E|u₁| at every width and depth",
            source="[derived: docs §7]",
            band=Band.around(1.0, VALUE_TOLERANCE),
            tolerance_by=f"ours: ±{VALUE_TOLERANCE:.0%}",
            estimate=value,
            reason="per cell (width, depth): "
            + ", ".join(f"({w}, {L}): {r:.3f}" for (w, L), r in per_cell.items()),
        )
    ]
    keys = ["depth", "width", "network"]
    paired = own.merge(he[[*keys, "p_over_eps"]], on=keys, suffixes=("", "_he"))
    paired = paired[paired["init"].isin(["lecun", "ntk"])]
    if len(paired):
        expected = [
            init_value(i, p, L) / init_value("he", p, L)
            for i, p, L in zip(paired["init"], paired["p"], paired["depth"], strict=True)
        ]
        deviation = (paired["p_over_eps"] / paired["p_over_eps_he"] / expected - 1).abs()
        out.append(
            check(
                NAME,
                "rescaling-init",
                statement="largest relative deviation of LeCun's and NTK's P/ε from He's rescaled, network by network (init)",
                prediction="0: LeCun = He·2^(−L/2), NTK = He·√(p/2) with the same draws",
                source="[derived: ReLU homogeneity]",
                band=Band(0.0, RESCALING_TOLERANCE),
                tolerance_by="ours: float32 rounding",
                estimate=statistic_estimate(deviation, "networks", np.max),
            )
        )
    middle = sorted(he["depth"].unique())[len(he["depth"].unique()) // 2]
    per_network = unit_means(he[he["depth"] == middle], ["width"], "network", ["p_over_eps"])
    out.append(
        claim(
            NAME,
            "width-init",
            statement=f"slope of log P/ε against log width (he, init, depth {middle}; LeCun and NTK are its rescalings)",
            prediction="0: no width trend at initialisation",
            source="[derived: docs §7]",
            band=Band.around(0.0, MIN_EFFECT),
            tolerance_by=f"ours: ±{MIN_EFFECT:g}, the minimum effect",
            estimate=slope_estimate(per_network, "width", "p_over_eps", "networks"),
            unmeasured="fewer than two widths",
        )
    )
    widest = own[own["width"] == own["width"].max()]
    for init, slope, text in (
        ("lecun", -0.5 * math.log(2), "−½·ln 2 = −0.347 per layer"),
        ("he", 0.0, "0 (NTK: the same)"),
    ):
        per_network = unit_means(widest[widest["init"] == init], ["depth"], "network", ["p_over_eps"])
        out.append(
            claim(
                NAME,
                f"depth-{init}-init",
                statement=f"slope of log P/ε against depth ({init}, init, width {widest['width'].max()})",
                prediction=text,
                source="[derived: docs §7]",
                band=Band.around(slope, MIN_EFFECT),
                tolerance_by=f"ours: ±{MIN_EFFECT:g}, the minimum effect",
                estimate=slope_estimate(per_network, "depth", "p_over_eps", "networks", log_x=False),
                unmeasured="fewer than two depths",
            )
        )
    return out


def usable(rows: pd.DataFrame, regime: str) -> pd.DataFrame:
    """Rows a claim may rest on: every network at initialisation; trained networks (test accuracy ≥ 0.95) after."""
    own = rows[rows["regime"] == regime]
    return own if regime == "init" else own[own["trained"].astype(bool)]


def trend_claim(rows: pd.DataFrame, init: str, regime: str, axis: str) -> dict:
    """The width trend (over the two largest widths, at the middle depth) or the depth trend (at the largest
    width) of log P/ε for one initialisation and regime, resampling networks."""
    all_rows = rows[(rows["regime"] == regime) & (rows["init"] == init)]
    own = usable(rows, regime)
    own = own[own["init"] == init]
    left_out = len(all_rows) - len(own)
    if axis == "width":
        depths = sorted(all_rows["depth"].unique())
        fixed = depths[len(depths) // 2] if depths else 0
        widths = sorted(all_rows["width"].unique())[-2:]
        frame = own[(own["depth"] == fixed) & own["width"].isin(widths)]
        where, prediction, direction = (
            f"depth {fixed}, widths {', '.join(map(str, widths))}",
            "< 0: width helps",
            "down",
        )
    else:
        fixed = all_rows["width"].max() if len(all_rows) else 0
        frame = own[own["width"] == fixed]
        where = f"width {fixed}"
        direction = DEPTH_TREND[init]
        prediction = "< 0 per layer: depth helps" if direction == "down" else "> 0 per layer: depth hurts"
    counts = frame.groupby(axis)["network"].nunique()
    thin = counts[counts < MIN_NETWORKS]
    frame = frame[~frame[axis].isin(thin.index)]
    per_network = unit_means(frame, [axis], "network", ["p_over_eps"])
    estimate = slope_estimate(per_network, axis, "p_over_eps", "networks", log_x=axis == "width")
    notes = []
    if regime == "trained" and len(all_rows):
        target, cap = all_rows["loss_target"].iloc[0], all_rows["max_epochs"].iloc[0]
        endpoint = f"mean training loss ≤ {target:g}" if target > 0 else f"a fixed {cap} epochs"
        notes.append(
            f"trained to {endpoint} (cap {cap} epochs) on {all_rows['train_subset'].iloc[0] or 12_665} images [ours]; "
            f"{left_out} of {len(all_rows)} networks left out (loss target missed or test accuracy < {MIN_ACCURACY:g})"
        )
    if len(frame) and frame[axis].nunique() > 1:
        per_f = unit_means(
            frame.assign(per_f=frame["p_over_eps"] / frame["f_abs"]), [axis], "network", ["per_f"]
        )
        beside = slope_estimate(per_f, axis, "per_f", "networks", log_x=axis == "width")
        notes.append(
            f"slope of log (P/ε ÷ E|f|) beside it: {beside.value:+.3f} [{beside.low:+.3f}, {beside.high:+.3f}]"
        )
    if len(thin):
        notes.append(
            f"{axis} "
            + ", ".join(f"{x} ({n} trained)" for x, n in thin.items())
            + f" left out: a cell needs {MIN_NETWORKS} trained networks"
        )
    return claim(
        NAME,
        f"{axis}-{init}-{regime}",
        statement=f"slope of log P/ε against {'log width' if axis == 'width' else 'depth'} ({init}, {regime}, {where})",
        prediction=prediction,
        source="[paper]",
        **trend(-1 if direction == "down" else 1),
        estimate=estimate,
        reason="; ".join(notes),
        unmeasured=f"fewer than two {axis} values with usable networks",
        finding=f"a finding at this scale: networks trained to one loss endpoint do not show the paper's {axis} "
        "trend here; the trend table is read off an upper bound with unknown constants, for widths and depths past "
        "ours, so scale=paper (widths to 4096, depths to 10, every training image: a GPU job) settles whether it "
        "appears there",
    )


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """At initialisation, what ReLU homogeneity gives (init_claims); after training, the paper's trend table (width
    helps when over-parameterised; depth helps under LeCun, hurts under He and NTK); the lazy ratio κ."""
    rows = with_cell_keys(rows, summary, ["p", "loss_target", "max_epochs", "train_subset"])
    out = init_claims(rows) + [
        trend_claim(rows, init, "trained", axis)
        for init in DEPTH_TREND
        if ((rows["regime"] == "trained") & (rows["init"] == init)).any()
        for axis in ("width", "depth")
    ]
    trained = rows[rows["regime"] == "trained"]
    for init in INITS:
        own = trained[trained["init"] == init]
        if len(own):
            out.append(
                reported(
                    NAME,
                    f"kappa-{init}",
                    statement=f"median lazy ratio κ of the trained {init} networks (all widths and depths); "
                    f"{int(own['trained'].sum())} of {len(own)} count as trained (their loss target, where set, and test accuracy ≥ {MIN_ACCURACY:g})",
                    estimate=statistic_estimate(own["kappa"], "networks", np.median),
                    why="no claim: the paper gives κ for its non-lazy experiment only; small is β = m^(−c), the "
                    "non-lazy setting, lecun/he/ntk the lazy ones",
                )
            )
    small = trained[trained["init"] == "small"]
    if len(small):
        out.append(
            reported(
                NAME,
                "p-over-eps-small",
                statement="median P/ε of the trained non-lazy networks (init=small, β = m^(−c), two layers)",
                estimate=statistic_estimate(small["p_over_eps"], "networks", np.median),
                why="no claim: the paper's non-lazy bound P ≤ Õ(n/m^(c+1.5)) has unknown constants; compare with the lazy "
                "inits' P/ε in the figure",
            )
        )
    return out
