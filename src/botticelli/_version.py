"""The version, written once: pyproject (hatchling), ``botticelli.__version__``, the User-Agent
and ``botticelli --version`` all read it from here."""

__version__ = "0.1.0"
