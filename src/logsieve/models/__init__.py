"""The detectors: one RNNClassifier whose config makes every study variant, and the count-vector baselines."""
