"""The public surface is exactly what __all__ says, and every module declares __all__."""

from __future__ import annotations

import importlib
import pkgutil

import hibernate


def test_public_names_are_exported() -> None:
    expected = {"save", "load", "inspect", "open", "Snapshot", "Manifest", "Entry", "Skip",
                "SaveReport", "SavedEntry", "LoadReport", "HibernateError", "FormatError",
                "VersionError", "IntegrityError", "UntrustedFileError", "StorageError",
                "EngineError",
                "__version__", "load_ipython_extension", "unload_ipython_extension",
                "save_on_exit", "Checkpoint", "Diff", "checkout", "checkpoint", "diff",
                "export_checkpoint", "import_checkpoint", "log", "prune", "retain", "Placeholder",
                "PlaceholderError", "How", "Kind", "SkipCode", "Signature"}
    assert set(hibernate.__all__) == expected
    for name in hibernate.__all__:
        assert hasattr(hibernate, name), name


def test_every_module_declares_all_and_the_error_tree_has_one_root() -> None:
    for info in pkgutil.walk_packages(hibernate.__path__, "hibernate."):
        if info.name == "hibernate.__main__":  # importing it runs the CLI
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"
    for name in ("FormatError", "IntegrityError", "UntrustedFileError", "StorageError",
                 "EngineError", "PlaceholderError"):
        assert issubclass(getattr(hibernate, name), hibernate.HibernateError)
    assert issubclass(hibernate.VersionError, hibernate.FormatError)


def test_optional_dependencies_are_not_imported_by_hibernate() -> None:
    import subprocess
    import sys

    code = ("import sys, hibernate; bad = [m for m in ('numpy', 'pandas', 'pyarrow', "
            "'polars', 'IPython', 'ipywidgets', 'fsspec', 's3fs', 'zstandard', "
            "'jupyter_client', 'sqlite3') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
