"""The package version (a leaf module: everything may import it)."""

__all__ = ["VERSION"]

VERSION = "0.2.0"
