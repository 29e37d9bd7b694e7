"""hibernate: save a whole live Python session to one file and bring it back later.

    import hibernate
    hibernate.save("analysis.hib")        # the caller's __main__ namespace
    hibernate.load("analysis.hib")        # in another process, tomorrow
    hibernate.inspect("analysis.hib")     # what is inside, without running any code
"""

from __future__ import annotations

from ._api import inspect, load, open, save
from ._ipython import load_ipython_extension, unload_ipython_extension
from ._placeholder import Placeholder
from ._reports import LoadReport, Manifest, SavedEntry, SaveReport
from ._run import save_on_exit
from ._version import VERSION as __version__
from .checkpoints import (
    Checkpoint,
    Diff,
    checkout,
    checkpoint,
    diff,
    export_checkpoint,
    import_checkpoint,
    log,
    prune,
    retain,
)
from .errors import (
    EngineError,
    FormatError,
    HibernateError,
    IntegrityError,
    PlaceholderError,
    StorageError,
    UntrustedFileError,
    VersionError,
)
from .format import Entry, How, Kind, Skip, SkipCode
from .session import Snapshot
from .trust import Signature

__all__ = [
    "Checkpoint",
    "Diff",
    "EngineError",
    "Entry",
    "FormatError",
    "HibernateError",
    "How",
    "IntegrityError",
    "Kind",
    "LoadReport",
    "Manifest",
    "Placeholder",
    "PlaceholderError",
    "SaveReport",
    "SavedEntry",
    "Signature",
    "Skip",
    "SkipCode",
    "Snapshot",
    "StorageError",
    "UntrustedFileError",
    "VersionError",
    "__version__",
    "checkout",
    "checkpoint",
    "diff",
    "export_checkpoint",
    "import_checkpoint",
    "inspect",
    "load",
    "load_ipython_extension",
    "log",
    "open",
    "prune",
    "retain",
    "save",
    "save_on_exit",
    "unload_ipython_extension",
]
