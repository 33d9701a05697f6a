"""A trained model as a folder: its weights, the ``model.json`` that says how to rebuild and feed it, and its model
card. Written by ``train`` and by a study for the recommended strategy; read by ``predict``, ``evaluate``,
``export``, the report and the trackers."""

from medtransfer.model.card import write_model_card
from medtransfer.model.saved import DeliveredNet, SavedModel, is_complete, load_model, mark_complete, save_model

__all__ = ["DeliveredNet", "SavedModel", "is_complete", "load_model", "mark_complete", "save_model", "write_model_card"]
