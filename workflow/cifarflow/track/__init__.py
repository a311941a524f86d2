"""Tracking: every finished training and study logged to MLflow, and two studies compared on the same images."""
