"""benchmarks/timing.py: the median's interval, rounds that stop once the ratios are known, the load record."""

import argparse
import itertools

import numpy as np
from timing import Load, interleaved, median_interval, ratio


def test_median_interval_is_the_binomial_order_statistics():
    assert median_interval(range(5)) is None  # 2 / 2**5 > 5%: no 95% interval of five values
    assert median_interval([5, 0, 3, 1, 4, 2]) == [0, 5]  # six: the extremes (coverage 1 - 2/64)
    assert median_interval(range(30)) == [9, 20]  # the 10th and 21st of 30, as the tables give


def test_ratio_is_taken_within_each_round():
    r = ratio([2, 4, 6, 8, 10, 12], [1, 2, 3, 4, 5, 6])  # slower rounds slow both alike
    assert r == {"median": 2.0, "ci95": [2.0, 2.0], "rounds": 6, "stable": True}


def test_rounds_stop_when_the_ratio_is_stable_or_at_the_maximum():
    args = argparse.Namespace(rounds=6, max_rounds=40, tolerance=0.03)
    steady = itertools.count(1)
    values, ratios = interleaved(lambda: {"ours": next(steady) / 2, "peer": next(steady)}, [("ours", "peer")],
                                 args, "steady")  # a ratio near 1/2 that settles
    assert len(values["ours"]) == ratios["ours / peer"]["rounds"] < 40 and ratios["ours / peer"]["stable"]
    rng = np.random.default_rng(0)
    values, ratios = interleaved(lambda: {"ours": rng.uniform(1, 2), "peer": 1.0}, [("ours", "peer")], args, "noisy")
    assert ratios["ours / peer"]["rounds"] == 40 and not ratios["ours / peer"]["stable"]
    lo, hi = ratios["ours / peer"]["ci95"]
    assert 1 < lo < ratios["ours / peer"]["median"] < hi < 2


def test_load_record():
    r = Load().record()
    assert len(r["before"]) == len(r["after"]) == 3 and r["cores"] >= 1
    assert isinstance(r["idle"], bool) and r["others_cores"] >= 0 and "idle_rule" in r
