"""The recommendation rules on hand-made validation scores, and the bootstrap standard error they rest on."""

import numpy as np
import pytest

from medtransfer.study.recommend import Evidence, choose, validation_evidence
from medtransfer.study.search import LayerwiseSearch
from medtransfer.tasks.segmentation import DICE


def _evidence(**means_and_se):
    return {name.replace("_", ":"): Evidence(name.replace("_", ":"), m, se, 3, "cases")
            for name, (m, se) in means_and_se.items()}


def test_one_se_picks_the_cheapest_strategy_within_one_standard_error_of_the_best():
    ev = _evidence(scratch=(0.70, 0.02), linear=(0.80, 0.02), tune_1=(0.86, 0.02), tune_2=(0.875, 0.02),
                   tune_3=(0.88, 0.02), full=(0.89, 0.02))
    argmax, one_se = choose(ev, DICE, "argmax"), choose(ev, DICE, "one-se")
    assert argmax.pick == "full" and one_se.best == "full"
    # best 0.89 − SE 0.02 = 0.87: tune:2, tune:3 and full are level; tune:2 trains the fewest groups
    assert one_se.pick == "tune:2" and one_se.level == ["tune:2", "tune:3", "full"]
    assert argmax.level == one_se.level  # the report names the level strategies whichever the rule
    # a strategy exactly as good as the best but cheaper wins the tie under both rules
    tie = _evidence(linear=(0.9, 0.01), full=(0.9, 0.01))
    assert choose(tie, DICE, "argmax").pick == "linear" and choose(tie, DICE, "one-se").pick == "linear"
    # scratch is the most expensive: level with the best, it is not picked over a pre-trained strategy
    level = _evidence(scratch=(0.90, 0.03), tune_1=(0.88, 0.03), full=(0.91, 0.03))
    assert choose(level, DICE, "one-se").pick == "tune:1"
    with pytest.raises(ValueError, match="one-se"):
        choose(ev, DICE, "median")


def test_without_a_standard_error_one_se_is_the_best_mean_and_says_so():
    ev = {s: Evidence(s, m, float("nan"), 1, "none") for s, m in (("linear", 0.8), ("tune:1", 0.85))}
    c = choose(ev, DICE, "one-se")
    assert c.pick == "tune:1" and c.level == ["tune:1"] and "no standard error" in c.note


def test_validation_standard_error_is_a_bootstrap_over_cases_and_seeds():
    rng = np.random.default_rng(0)
    n = 400
    cases = np.arange(n)
    noisy = {seed: (float(d.mean()), (cases, {"dice": d})) for seed, d in
             ((s, np.clip(rng.normal(0.7, 0.2, n), 0, 1)) for s in range(3))}
    flat = {0: (0.9, (cases, {"dice": np.full(n, 0.9)}))}
    ev = validation_evidence({"a": noisy, "b": flat}, DICE, n_resamples=400)
    a = ev["a"]
    assert a.source == "cases" and a.seeds == 3
    assert a.mean == pytest.approx(np.mean([v for v, _ in noisy.values()]))
    # per-case SD ≈ 0.2 over 400 cases, averaged over 3 seeds drawn with replacement: ≈ 0.2/√400 = 0.01 at least
    assert 0.006 < a.se < 0.03
    assert ev["b"].se == pytest.approx(0.0, abs=1e-12)
    # trials without per-case records: the seeds' spread, or nothing with one seed
    by_seeds = validation_evidence({"c": {0: (0.7, None), 1: (0.8, None)}, "d": {0: (0.5, None)}}, DICE)
    assert by_seeds["c"].source == "seeds" and by_seeds["c"].se == pytest.approx(np.std([0.7, 0.8], ddof=1) / np.sqrt(2))
    assert by_seeds["d"].source == "none" and np.isnan(by_seeds["d"].se)


def _cells(scores: dict[str, float]):
    """One seed per strategy, 50 validation cases with the given mean Dice and a little spread."""
    rng = np.random.default_rng(1)
    out = {}
    for s, m in scores.items():
        d = np.clip(m + rng.normal(0, 0.05, 50), 0, 1)
        out[s] = {0: (float(d.mean()), (np.arange(50), {"dice": d}))}
    return out


def test_layerwise_search_goes_deeper_while_it_pays_and_stops_after_patience():
    chain = ["linear", "tune:1", "tune:2", "tune:3", "tune:4", "tune:5"]
    search = LayerwiseSearch(chain, [1.0], [0], DICE, patience=2)
    cells = _cells({"linear": 0.5, "tune:1": 0.6, "tune:2": 0.7, "tune:3": 0.7, "tune:4": 0.69, "tune:5": 0.95})
    walked = search.state(1.0, cells, lambda s, f, seed: s != "tune:5")
    # tune:1 and tune:2 each gain 0.1 (SE ≈ 0.007); tune:3 and tune:4 gain nothing: stop, tune:5 is never seen
    assert walked.best == "tune:2" and walked.stopped_after == "tune:4" and walked.skipped == ["tune:5"]
    # mid-search: the first depth not finished is the frontier; the anchors come first
    done = {"linear", "tune:1", "scratch"}
    todo = search.next_round(lambda f: cells, lambda s, f, seed: s in done)
    assert todo == [("full", 1.0, 0), ("tune:2", 1.0, 0)]
    finished = search.next_round(lambda f: cells, lambda s, f, seed: True)
    assert finished == []
    # with room for three trials at once, the round is filled with the next depths, shallow first
    assert search.next_round(lambda f: cells, lambda s, f, seed: s in done | {"full"}, width=3) == [
        ("tune:2", 1.0, 0), ("tune:3", 1.0, 0), ("tune:4", 1.0, 0)]
    # a depth trained beyond where the chain stopped (speculatively) is a result, not a skipped depth
    beyond = search.state(1.0, cells, lambda s, f, seed: True)
    assert beyond.stopped_after == "tune:4" and beyond.skipped == []
