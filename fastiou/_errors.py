"""The exception fastiou raises for bad input."""


class InputError(ValueError, RuntimeError):
    """A wrong shape, rank, length or dtype.

    A subclass of both ``ValueError`` and ``RuntimeError``: torchvision raises RuntimeError for
    these, so code and tests written against torchvision keep working.
    """
