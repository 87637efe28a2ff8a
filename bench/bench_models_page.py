"""Weight and speed of the models chapter's per-model table: the time to build it from the
published files (the readers plus the landscape fit, the forks' decisions and the ImageNet-X
tables, as the chapter builds it) and the bytes the page loads for it (its data file and the
table's markup). Targets: at most 60 s to build; at most 400 kB for the table's data and
markup, so the page with its text stays far under the 1.5 MB a page may weigh (the theme's
and the charts' shared scripts, the same on every page, come on top).

    .venv/bin/python bench/bench_models_page.py [--target-s 60] [--target-kb 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-s", type=float, default=60.0)
    ap.add_argument("--target-kb", type=float, default=400.0)
    args = ap.parse_args(argv)

    import pandas as pd
    from clipsafety import published_models as pm
    from clipsafety.groups import group_label
    from clipsafety.plots import CHART_DATA_ENV
    from clipsafety.published import SHIFTS
    from clipsafety.sortable import sortable_table
    from clipsafety.studies import factors, landscape, shape_bias
    from clipsafety.studies import models as study

    t0 = time.perf_counter()
    long = landscape.published_long(landscape.LANDSCAPE_SOURCES, list(SHIFTS))
    points, _, _ = landscape.fit_landscape(long, n_boot=100, grid_points=2)
    er = landscape.effective_robustness_table(points)
    forks = pd.concat([shape_bias.mvh_decisions(r, humans=False) for r in shape_bias.MVH_SOURCES],
                      ignore_index=True)
    tables = [factors.published_factor_table(c) for c in factors.PUBLISHED_COLLECTIONS]
    tables.append(factors.published_decision_factors()[1])
    t = pm.table(er, forks, tables)
    built = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as d:
        os.environ[CHART_DATA_ENV] = d
        shown = t[study.shown_columns(t)].assign(group=t["group"].map(group_label))
        html = sortable_table(shown, headers=study.headers(), titles=study.titles(),
                              kind_column="group")["text/html"]
        data = sum(p.stat().st_size for p in Path(d).glob("*.js"))
        csv = sum(p.stat().st_size for p in Path(d).glob("*.csv"))
    kb = (data + len(html.encode())) / 1000
    print(f"{len(t):,} checkpoints, {len(shown.columns)} columns")
    print(f"build              {built:7.1f} s   (target <= {args.target_s:g} s)")
    print(f"data file          {data / 1000:7.1f} kB")
    print(f"table markup       {len(html.encode()) / 1000:7.1f} kB")
    print(f"data + markup      {kb:7.1f} kB  (target <= {args.target_kb:g} kB)")
    print(f"CSV download       {csv / 1000:7.1f} kB  (fetched only on click)")
    return 0 if built <= args.target_s and kb <= args.target_kb else 1


if __name__ == "__main__":
    sys.exit(main())
