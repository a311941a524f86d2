"""The data stage: the dataset's download, its archive read safely, the dataset descriptions, the splits."""
