"""The export stage: the exported model files and the predict command."""
