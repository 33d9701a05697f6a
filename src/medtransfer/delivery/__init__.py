"""Delivering a trained model: predict on new images, export it (ONNX), describe it (a model card), and calibrate
its probabilities.

The modules are imported by name (``medtransfer.delivery.predict``, ``.export``, ``.model_card``,
``.calibration``); the package itself imports none of them, so that a task can use the calibration without
importing the task registry back.
"""
