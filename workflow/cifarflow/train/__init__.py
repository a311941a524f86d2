"""The train stage: architectures, models, input streams, optimizers, checkpoints, the epoch loop, the live view."""
