"""What a cell's calls do outside the session: write or delete files, start processes, use
the network. Found from dotted call names (resolved through the session's imports by the
caller), method names (``df.to_csv``) and the mode argument of openers.

Non-goals: calls hidden behind the user's own functions; what a library does inside.
"""

from __future__ import annotations

__all__ = ["EFFECT_METHODS", "WRITE_MODES", "effect_of"]

# Calls that act outside the session: (dotted name or method name, what it does). A method
# name matches any receiver (``df.to_csv``); a dotted name matches that call.
_EFFECTS: dict[str, str] = {
    # (creating a directory is not flagged: it destroys nothing, and notebooks do it to set
    # up where they work)
    **{f"os.{n}": "changes files" for n in (
        "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "chmod",
        "chown", "link", "symlink", "truncate", "utime")},
    **{f"os.{n}": "starts a process" for n in (
        "system", "popen", "spawnl", "spawnv", "execv", "execl", "fork", "kill")},
    **{f"shutil.{n}": "changes files" for n in (
        "rmtree", "move", "copy", "copy2", "copyfile", "copytree", "make_archive")},
    **{f"subprocess.{n}": "starts a process" for n in (
        "run", "call", "check_call", "check_output", "Popen")},
    **{f"socket.{n}": "uses the network" for n in ("socket", "create_connection")},
    **{f"urllib.request.{n}": "uses the network" for n in ("urlopen", "urlretrieve")},
    **{f"requests.{n}": "uses the network" for n in (
        "get", "post", "put", "patch", "delete", "head", "request", "Session")},
    **{f"httpx.{n}": "uses the network" for n in (
        "get", "post", "put", "patch", "delete", "head", "request", "Client", "AsyncClient")},
    **{f"np.{n}": "writes files" for n in ("save", "savez", "savez_compressed", "savetxt")},
    **{f"numpy.{n}": "writes files" for n in ("save", "savez", "savez_compressed",
                                              "savetxt")},
    **{f"{m}.{n}": "writes files" for m in ("pickle", "json", "joblib", "dill", "marshal",
                                            "cloudpickle") for n in ("dump",)},
    **{f"hibernate.{n}": "writes files" for n in ("save", "checkpoint", "prune", "retain")},
    "shutil.unpack_archive": "changes files",
    "webbrowser.open": "uses the network",
}
EFFECT_METHODS: dict[str, str] = {
    **{n: "writes files" for n in (
        "to_csv", "to_parquet", "to_excel", "to_json", "to_pickle", "to_feather", "to_hdf",
        "to_sql", "to_stata", "to_html", "to_latex", "to_markdown", "to_orc", "to_xml",
        "to_clipboard", "tofile", "savefig", "write_text", "write_bytes", "write_csv",
        "write_parquet", "write_ipc", "write_json", "write_ndjson", "write_excel",
        "write_database", "write_delta", "sink_parquet", "sink_csv", "sink_ipc")},
    **{n: "changes files" for n in ("unlink", "rmdir", "touch", "rename", "symlink_to",
                                    "hardlink_to", "chmod")},
}
WRITE_MODES = frozenset("wax+")
# Modules whose every call acts outside the session (but these few)
_OUTSIDE = {"shutil": "changes files", "subprocess": "starts a process",
            "socket": "uses the network", "urllib": "uses the network",
            "requests": "uses the network", "httpx": "uses the network",
            "http": "uses the network", "ftplib": "uses the network",
            "smtplib": "uses the network", "telnetlib": "uses the network",
            "webbrowser": "uses the network", "multiprocessing": "starts a process",
            "pty": "starts a process"}
_HARMLESS = frozenset({"shutil.which", "shutil.disk_usage", "shutil.get_terminal_size",
                       "urllib.parse", "http.HTTPStatus", "socket.gethostname"})
_OS_PREFIXES = {"os.exec": "starts a process", "os.spawn": "starts a process",
                "os.posix_spawn": "starts a process", "os.fork": "starts a process",
                "os.kill": "starts a process", "os.write": "writes files",
                "asyncio.create_subprocess": "starts a process"}
# Openers that write when given a writing mode (second argument or ``mode=``)
_OPENERS = frozenset({"open", "io.open", "os.open", "codecs.open", "gzip.open", "bz2.open",
                      "lzma.open", "tarfile.open", "zipfile.ZipFile", "shelve.open",
                      "dbm.open"})


def effect_of(name: str, mode: str | None) -> str | None:
    """What a call of ``name`` (dotted, resolved through imports) does outside the session,
    or None. ``mode``: its mode argument's text ("" when absent, None when not a string)."""
    if name in _EFFECTS:
        return f"{_EFFECTS[name]} ({name})"
    if name in _OPENERS or name.endswith(".open") and name.split(".")[0] in (
            "io", "gzip", "bz2", "lzma", "tarfile", "codecs"):
        if mode is None or WRITE_MODES & set(mode):
            return f"writes a file ({name}(..., {mode if mode is not None else '?'!r}))"
        return None
    if name.startswith(tuple(_OS_PREFIXES)):
        prefix = next(p for p in _OS_PREFIXES if name.startswith(p))
        return f"{_OS_PREFIXES[prefix]} ({name})"
    root = name.split(".")[0]
    if root in _OUTSIDE and not name.startswith(tuple(_HARMLESS)):
        return f"{_OUTSIDE[root]} ({name})"
    if name.endswith((".save", ".dump")) and root in ("torch", "joblib", "dill", "np",
                                                       "numpy", "pickle", "json", "yaml"):
        return f"writes files ({name})"
    return None
