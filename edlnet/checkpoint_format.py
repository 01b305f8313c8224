"""The checkpoint format: the files of a checkpoint folder and the error for a bad one.

Shared by the reader (:mod:`edlnet.checkpoint`: ``save``, ``load``) and the kill-safe writer of
training runs (:mod:`edlnet.train.commits`), whose manifests the reader checks when it picks a
run's checkpoint; in a module of its own so that neither imports the other's.
"""

WEIGHTS = "model.safetensors"
META = "model.json"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model it describes."""
