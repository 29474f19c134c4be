"""Each model's quality aim on its default params: the numbers the README reports must meet these.

Used by the slow tests (tests/test_quality.py) and by `make bench` (item 3: a full repro counts only
if every model meets its aim).
"""

from __future__ import annotations

from collections.abc import Callable


def freq_filter_ok(m: dict) -> bool:
    return m["test"]["mse"] <= 0.01 and m["test"]["mse"] < m["baselines"]["bandpass"]["mse"] / 10


def bandwidth_ok(m: dict) -> bool:
    model, persistence = m["test"]["mean"], m["baselines"]["persistence"]["mean"]
    return m["goal"]["met"] and model["rmse"] < persistence["rmse"]


def ice_type_ok(m: dict) -> bool:
    test, baselines = m["test"], m["baselines"].values()
    return (test["accuracy"] >= 0.9 and test["macro_f1"] >= 0.9
            and all(test["macro_f1"] >= b["macro_f1"] + 0.15 for b in baselines))


def ice_forecast_ok(m: dict) -> bool:
    leads = [k for k in m["test"] if k.startswith("rmse_lead_")]
    return len(leads) == 7 and all(m["test"][k] < b[k] for b in m["baselines"].values() for k in leads)


def ice_change_ok(m: dict) -> bool:
    test, baseline = m["test"], m["baselines"]["abs_difference"]
    return test["f1"] >= 0.9 and test["f1"] >= baseline["f1"] + 0.1 and test["iou"] > baseline["iou"]


def crop_ndvi_ok(m: dict) -> bool:
    test, baselines = m["test"], m["baselines"]
    return (test["r2"] >= 0.9 and m["min_accuracy"]["passed"]
            and test["rmse"] < 0.75 * baselines["persistence"]["rmse"]
            and all(test["rmse"] < b["rmse"] for b in baselines.values()))


AIMS: dict[str, Callable[[dict], bool]] = {
    "freq_filter": freq_filter_ok,
    "bandwidth": bandwidth_ok,
    "ice_type": ice_type_ok,
    "ice_forecast": ice_forecast_ok,
    "ice_change": ice_change_ok,
    "crop_ndvi": crop_ndvi_ok,
}
