"""The library's version, apart from the package root so that modules which record it
(:func:`edlnet.records.environment`) need not import the whole package."""

__version__ = "0.1.0"
