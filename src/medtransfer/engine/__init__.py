"""One trial, end to end: read and split the data, build the network for a strategy, train it, test it and
calibrate it. ``medtransfer train`` runs one trial; a study runs many, through the same code.

The modules, one job each: :mod:`~medtransfer.engine.data` (the source read and split, each trial's training
subset), :mod:`~medtransfer.engine.images` (the decoded images shared by the trials), :mod:`~medtransfer.engine.network`
(the seeded backbone, the network cut for a strategy, its spec), :mod:`~medtransfer.engine.prefix_cache` (the
frozen-prefix cache), :mod:`~medtransfer.engine.loaders` (a trial's batches), :mod:`~medtransfer.engine.stages` (a
strategy's earlier stages), :mod:`~medtransfer.engine.testing` (validation and test predictions, calibration),
:mod:`~medtransfer.engine.outcome` (what a trial produced or paused at) and :mod:`~medtransfer.engine.trial` (the
trial itself)."""

from medtransfer.engine.data import PreparedData, prepare_data, trial_subset
from medtransfer.engine.environment import environment, seed_everything
from medtransfer.engine.images import TrialImages, data_fingerprint
from medtransfer.engine.loaders import image_loader
from medtransfer.engine.network import build_network, model_options
from medtransfer.engine.outcome import PausedTrial, TrialOutcome
from medtransfer.engine.prefix_cache import build_cache, cache_key, cache_views
from medtransfer.engine.testing import score_test_split
from medtransfer.engine.trial import run_trial

__all__ = ["PausedTrial", "PreparedData", "TrialImages", "TrialOutcome", "build_cache", "build_network", "cache_key",
           "cache_views", "data_fingerprint", "environment", "image_loader", "model_options", "prepare_data",
           "run_trial", "seed_everything", "score_test_split", "trial_subset"]
