"""Which trials a study runs: the whole grid, or the paper's layer-wise scheme.

- ``grid``: every strategy × training fraction × seed, planned up front (the full table).
- ``layerwise``: Tajbakhsh et al.'s recipe. The two anchors of the comparison, ``scratch`` and ``full``, always run;
  the chain ``linear``, ``tune:1``, ``tune:2``, … goes one group deeper per round, each depth at every seed. At each
  training fraction on its own, the chain stops once ``patience_depth`` depths in a row have not improved the best
  mean validation metric of the chain by more than one standard error of the new depth's mean
  (:func:`~medtransfer.study.recommend.validation_evidence`: a bootstrap over validation cases and seeds). The depths
  it did not train are *skipped*: the summary and the report name them.

A round has the frontier depth of every fraction whose chain is still going. When that is fewer trials than the
executor runs at once (a 2-core CPU runs two; often only the largest fraction's chain is left), the round is filled
with the next depths of the going chains, speculatively: a core would idle otherwise, and a depth trained beyond
where the chain then stops is kept as a result (it is not *skipped*). A trial's numbers do not depend on the round
it ran in, up to the rounding of its thread count (the ``auto`` executor runs a round of one trial with every
core's threads).

A search is a function of what the store holds: :meth:`LayerwiseSearch.next_round` reads the finished trials and
returns those to run next (none once every fraction has stopped). A study killed mid-search therefore resumes the same
search, and a finished one plans nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medtransfer.study.recommend import validation_evidence
from medtransfer.tasks import Metric

#: the anchors a layer-wise search always trains, first
ANCHORS = ("scratch", "full")


@dataclass
class ChainState:
    """Where the chain of one training fraction stands."""

    fraction: float
    best: str | None = None  # the best depth of the chain so far
    trained: list[str] = field(default_factory=list)  # chain depths with every trial finished
    frontier: str | None = None  # the depth to train next (None: stopped or exhausted)
    stopped_after: str | None = None  # set when patience ran out
    skipped: list[str] = field(default_factory=list)



class LayerwiseSearch:
    """The layer-wise search over ``chain`` (``linear``, ``tune:1``, …, shallow to deep) at ``fractions`` and
    ``seeds``. ``cells(fraction)`` gives what the store holds at a fraction, as
    :meth:`~medtransfer.study.summary.TrialRecords.validation` does; ``finished`` the ids of recorded trials."""

    def __init__(self, chain: list[str], fractions: list[float], seeds: list[int], metric: Metric, patience: int = 2):
        self.chain, self.fractions, self.seeds = list(chain), list(fractions), list(seeds)
        self.metric, self.patience = metric, int(patience)

    def state(self, fraction: float, cells: dict, finished: Callable[[str, float, int], bool]) -> ChainState:
        """Replay the chain at ``fraction`` on the recorded trials."""
        st = ChainState(fraction)
        done = [d for d in self.chain if all(finished(d, fraction, s) for s in self.seeds)]
        # one bootstrap for every finished depth (a depth's SE does not depend on which others are scored with it)
        evidence = validation_evidence({d: cells.get(d, {}) for d in done}, self.metric) if done else {}
        stale = 0
        for depth in self.chain:
            if depth not in evidence:
                st.frontier = depth
                return st
            st.trained.append(depth)
            new = evidence[depth]
            if st.best is None:
                st.best = depth if np.isfinite(new.mean) else None
                continue
            best = evidence[st.best]
            margin = new.se if np.isfinite(new.se) else 0.0
            if np.isfinite(new.mean) and self.metric.sign * (new.mean - best.mean) > margin:
                st.best, stale = depth, 0
            else:
                stale += 1
            if stale >= self.patience:
                st.stopped_after = depth
                st.skipped = [d for d in self.chain[self.chain.index(depth) + 1:]
                              if not all(finished(d, fraction, s) for s in self.seeds)]
                return st
        return st

    def next_round(self, cells_at: Callable[[float], dict], finished: Callable[[str, float, int], bool],
                   width: int = 1) -> list[tuple[str, float, int]]:
        """The (strategy, fraction, seed) trials to run next: the anchors not yet run and each fraction's frontier,
        then, while the round has fewer than ``width`` trials, the depths after the frontiers (see the module
        docstring)."""
        todo = [(a, f, s) for f in self.fractions for s in self.seeds for a in ANCHORS if not finished(a, f, s)]
        going = []
        for f in self.fractions:
            st = self.state(f, cells_at(f), finished)
            if st.frontier is not None:
                todo += [(st.frontier, f, s) for s in self.seeds if not finished(st.frontier, f, s)]
                going.append((f, self.chain.index(st.frontier)))
        ahead = 1
        while len(todo) < width and any(i + ahead < len(self.chain) for _, i in going):
            for f, i in going:
                if i + ahead < len(self.chain):
                    depth = self.chain[i + ahead]
                    todo += [(depth, f, s) for s in self.seeds if not finished(depth, f, s)][:max(0, width - len(todo))]
            ahead += 1
        return todo

    def states(self, cells_at: Callable[[float], dict], finished: Callable[[str, float, int], bool]
               ) -> list[ChainState]:
        return [self.state(f, cells_at(f), finished) for f in self.fractions]


def describe_chains(chains: list[dict], percent: Callable[[float], str] = "{:.0%}".format) -> str:
    """Where each fraction's chain stopped, in words, from the ``chains`` a study stores (``ChainState`` fields):
    "at 100 % it stopped after tune:4 (not trained: tune:5, tune:6); at 25 % it trained every depth"."""
    parts = []
    for c in chains:
        if c["stopped_after"]:
            skipped = f" (not trained: {', '.join(c['skipped'])})" if c["skipped"] else ""
            parts.append(f"at {percent(c['fraction'])} it stopped after {c['stopped_after']}{skipped}")
        else:
            parts.append(f"at {percent(c['fraction'])} it trained every depth")
    return "; ".join(parts)
