"""The landscape fit recovers known lines and measures distance above them."""

import numpy as np
import pandas as pd
import pytest
from clipsafety.studies import landscape
from scipy import special


def _constructed(slope=1.3, intercept=-0.7, n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 0.9, n)
    y = special.expit(slope * special.logit(x) + intercept)
    df = pd.DataFrame({"source": "timm", "model": [f"m{i}" for i in range(n)],
                       "group": "standard", "imagenet": x, "shift": "r", "shift_acc": y})
    # CLIP models 5 points above the line
    xc = rng.uniform(0.5, 0.8, 20)
    yc = special.expit(slope * special.logit(xc) + intercept) + 0.05
    clip = pd.DataFrame({"source": "open_clip", "model": [f"c{i}" for i in range(20)],
                         "group": "clip-zeroshot", "imagenet": xc, "shift": "r", "shift_acc": yc})
    return pd.concat([df, clip], ignore_index=True)


def test_fit_recovers_known_slope_and_effective_robustness():
    points, bands, fits = landscape.fit_landscape(_constructed(), n_boot=200)
    assert fits.loc[0, "slope"] == pytest.approx(1.3, abs=1e-9)
    assert fits.loc[0, "intercept"] == pytest.approx(-0.7, abs=1e-9)
    assert fits.loc[0, "n_baseline"] == 200
    er = points.set_index("model")["eff_rob"]
    assert np.allclose(er[[f"m{i}" for i in range(200)]], 0, atol=1e-12)
    assert np.allclose(er[[f"c{i}" for i in range(20)]], 0.05, atol=1e-12)
    # a noiseless line has a band of zero width
    assert np.allclose(bands["lo"], bands["hi"], atol=1e-9)
    table = landscape.effective_robustness_table(points, groups=["clip-zeroshot"])
    assert len(table) == 20 and np.allclose(table["ER mean"], 0.05)


def test_band_widens_with_noise_and_contains_the_line():
    df = _constructed()
    rng = np.random.default_rng(1)
    std = df["group"] == "standard"
    df.loc[std, "shift_acc"] = np.clip(df.loc[std, "shift_acc"] + rng.normal(0, 0.03, std.sum()), 0.01, 0.99)
    _, bands, fits = landscape.fit_landscape(df, n_boot=300)
    assert (bands["hi"] - bands["lo"] > 0).all()
    assert ((bands["lo"] <= bands["mid"]) & (bands["mid"] <= bands["hi"])).all()
    assert fits.loc[0, "slope"] == pytest.approx(1.3, abs=0.15)


def test_too_few_baseline_models_is_a_clear_error():
    df = _constructed().query("group == 'clip-zeroshot'")
    with pytest.raises(ValueError, match="baseline models"):
        landscape.fit_landscape(df)
