"""The version of symprop (its own module, so any submodule can import it first)."""

__version__ = "0.1.0"
