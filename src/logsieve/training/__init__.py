"""Fitting detectors: the model-agnostic training loop, the Detector estimator, run directories, the study."""
