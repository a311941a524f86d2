"""The evaluation stage: scores, test-time augmentation, calibration, corruptions and robustness."""
