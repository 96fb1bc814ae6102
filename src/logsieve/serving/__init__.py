"""Putting a trained detector to work on new logs: bundles, scoring with explanations, watch, the HTTP service."""
