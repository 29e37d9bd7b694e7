"""Reports people read (viewer issue, "reports people read"): what was not saved or not
restored comes first, IPython's own names fold into one line, sizes align right, and a
load in a shell never counts IPython's history as names the session "kept"."""

from __future__ import annotations


def test_a_notebook_save_report_leads_with_what_matters(fresh) -> None:
    got = fresh.json("""
        import json, socket
        from IPython.core.interactiveshell import InteractiveShell
        import hibernate
        shell = InteractiveShell.instance()
        for cell in ["import socket", "s = socket.socket()", "data = list(range(10))",
                     "big = bytes(3_000_000)", "x = 1", "x + 1", "data"]:
            shell.run_cell(cell, store_history=True)
        report = hibernate.save("nb.hib", shell.user_ns)
        text = str(report)
        html = report._repr_html_()
        fresh_shell_ns = shell.user_ns
        for name in ("data", "big", "x", "s"):
            fresh_shell_ns.pop(name, None)
        loaded = hibernate.load("nb.hib", fresh_shell_ns)
        print(json.dumps({"text": text, "html": html, "kept": list(loaded.kept),
                          "load_text": str(loaded)}))
    """)
    text = got["text"]
    lines = text.splitlines()
    not_saved, saved = lines.index(next(ln for ln in lines if ln.startswith("not saved"))), \
        lines.index(next(ln for ln in lines if ln.startswith("saved (")))
    assert not_saved < saved  # what was lost comes first
    between = "\n".join(lines[not_saved:saved])
    assert "s " in between and "socket" in between  # the user's own loss, named
    folded = [ln for ln in lines if "IPython names" in ln]
    assert len(folded) == 1 and "never saved" in folded[0], text
    assert not any(ln.split()[:1] in (["_i1"], ["_oh"], ["In"], ["Out"], ["exit"])
                   for ln in lines), text
    header = lines[saved + 1]
    size_end = header.index("size") + len("size")
    rows = [ln for ln in lines[saved + 3:] if ln.split()[:1] in (["big"], ["data"], ["x"])]
    assert len(rows) == 3 and all(ln[:size_end].endswith("B") for ln in rows), text  # right
    assert got["html"].index("not saved") < got["html"].index("saved (")
    assert not any(n.startswith("_i") or n in ("In", "Out", "_oh", "_ih") for n in got["kept"])
    rows = got["load_text"].splitlines()[3:]  # after the title and the table's header
    statuses = [r.split()[1] for r in rows]
    assert statuses.index("skipped") < statuses.index("restored"), rows  # the loss first


def test_right_aligned_numbers_in_plain_tables() -> None:
    from hibernate._reports import table

    out = table(("name", "size"), [("a", "1 B"), ("bbbb", "100 KiB")], right=(1,)).splitlines()
    assert out[2].endswith("    1 B") and out[3].endswith("100 KiB")
    assert out[2].startswith("a    ")


def test_printing_a_report_leaves_the_users_random_numbers_alone(fresh) -> None:
    """The table library is imported the first time a report is printed, and importing it
    draws from Python's global generator: the session's next number must not change."""
    got = fresh.json("""
        import json, random
        import hibernate
        random.seed(7)
        r = hibernate.save("s.hib", {"x": 1})
        str(r)                      # the first table of the process
        drawn = random.random()
        random.seed(7)
        print(json.dumps([drawn, random.random()]))
    """)
    assert got[0] == got[1]
