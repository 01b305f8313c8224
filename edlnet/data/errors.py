"""The one exception the data package raises for datasets a user can fix."""


class DatasetError(ValueError):
    """A dataset is missing, incomplete or malformed.

    The message names the file or folder that was expected, where it was looked for, and how to
    get it right (for downloadable datasets, the official URL). It subclasses ``ValueError`` so
    callers that already catch bad-argument errors keep working.
    """
