"""The viewer end to end: `hibernate serve` in a subprocess, driven by a real headless
Chromium (Debian's, through Playwright): a session file and a store made by the tests, the
variables, a frame preview, a diff, HTML from the file shown as text, a canary that would
create a file if unpickled, the token and the Content-Security-Policy.

Where Chromium (or Playwright) is missing these tests skip and say why, except in CI (the
`CI` variable set), where they fail: `.ci/run` installs Debian's chromium first.
Set HIBERNATE_UPDATE_SCREENSHOT=1 to write the main page's screenshot to docs/viewer.png.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_KEY, run_python

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("HIBERNATE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'"

MAKE = """
import numpy as np, pandas as pd, hibernate

class Canary:
    def __reduce__(self):  # unpickling it would create the canary file
        return (open, ({canary!r}, "w"))

frame = pd.DataFrame({{"city": [f"city {{i}}" for i in range(30)],
                       "rain_mm": [float(i) * 1.5 for i in range(30)]}})
html_frame = pd.DataFrame({{"<b>x</b>": [1, 2, 3]}})
globals()["données_été"] = np.arange(3)
grid = np.arange(12.0).reshape(3, 4)
note = "<script>alert(1)</script>"
canary = Canary()
hibernate.save("session.hib")
hibernate.checkpoint("store", message="first")
grid = grid * 2
added = [1, 2, 3]
hibernate.checkpoint("store", message="second")

ns = {{"sales": pd.DataFrame({{"region": [f"r{{i}}" for i in range(20)],
                              "units": list(range(20)), "price": [1.5] * 20}})}}
base = hibernate.checkpoint("branches", ns, message="base")
ns["sales"].loc[3, "units"] = 99  # a cell changed one column...
more = pd.DataFrame({{"region": ["r20", "r21"], "units": [20, 21], "price": [1.5, 1.5]}})
ns["sales"] = pd.concat([ns["sales"], more], ignore_index=True)  # ...and appended rows
hibernate.checkpoint("branches", ns, message="main: more rows")
hibernate.checkout("branches", base.id, ns)
ns["sales"]["discount"] = 0.1
hibernate.checkpoint("branches", ns, message="experiment: a discount")
"""


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM) and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _need_browser() -> None:
    why = _missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A session file and a two-checkpoint store, made in a fresh process."""
    work = tmp_path_factory.mktemp("viewer")
    config = tmp_path_factory.mktemp("viewer-config")
    canary = work / "CANARY"
    env = {"HIBERNATE_KEY": TEST_KEY, "HIBERNATE_CONFIG_DIR": str(config)}
    run_python(MAKE.format(canary=str(canary)), cwd=work, env=env)
    return {"work": work, "file": work / "session.hib", "store": work / "store",
            "branches": work / "branches",
            "canary": canary, "config": config}


@contextlib.contextmanager
def _serving(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """`hibernate serve ARGS` on a free port; yields the URL with the token."""
    log = cwd / "serve.log"
    with open(log, "w") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "hibernate", "serve", *args], cwd=cwd,
                                env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=errors, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "http://" not in line:
            proc.kill()
            raise AssertionError(f"no URL from hibernate serve: {line!r} {log.read_text()}")
        yield line.split("at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server(made: dict[str, Path]) -> Iterator[str]:
    """`hibernate serve FILE STORE BRANCHES` on a free port; yields the URL with the token."""
    env = {"HIBERNATE_KEY": TEST_KEY, "HIBERNATE_CONFIG_DIR": str(made["config"])}
    with _serving(["session.hib", "store", "branches"], made["work"], env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(server)  # the token, once: from now on the cookie
    yield pg
    assert pg.dialogs == [], "a script from the file ran"  # type: ignore[attr-defined]
    context.close()


def _follow(page: Any, selector: str) -> None:
    """Click a link (or a submit button) and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def _back(page: Any) -> None:
    page.go_back(wait_until="load")


def _pictures(page: Any, selector: str, count: int) -> None:
    """``count`` images that the browser decoded (a data: URL allowed by the CSP)."""
    images = page.locator(selector)
    assert images.count() == count
    for i in range(count):
        size = images.nth(i).evaluate("(img) => [img.complete, img.naturalWidth, "
                                      "img.naturalHeight]")
        assert size[0] and size[1] > 0 and size[2] > 0, size


def _base(url: str) -> str:
    return url.split("/?", 1)[0]


def test_a_request_without_the_token_is_refused_and_every_answer_has_the_csp(
        server: str) -> None:
    base = _base(server)
    for url in (base + "/", base + "/s/0", base + "/static/viewer.js", base + "/?token=wrong"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 403, url
        assert CSP in refused.value.headers["Content-Security-Policy"]
    with urllib.request.urlopen(server, timeout=10) as ok:
        assert ok.status == 200
        assert CSP in ok.headers["Content-Security-Policy"]
        cookie = ok.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_the_session_page_lists_the_variables_and_shows_html_from_the_file_as_text(
        page: Any, server: str, made: dict[str, Path], tmp_path: Path) -> None:
    page.wait_for_function("!location.search.includes('token')")  # the script took it out
    _follow(page, "text=session.hib")
    page.wait_for_selector("input.filter")  # the package's script ran under the CSP
    text = page.inner_text("main")
    for name in ("frame", "html_frame", "grid", "note", "canary", "pandas.DataFrame",
                 "numpy.ndarray", "30×2", "signature", "valid", "Python"):
        assert name in text, name
    shot = tmp_path / "viewer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HIBERNATE_UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "viewer.png")

    _follow(page, "table.entries >> text=frame")
    text = page.inner_text("main")
    for expected in ("city 0", "city 4", "city 25", "city 29", "rain_mm", "float64",
                     "min 0, max 43.5, mean 21.75", "20 rows not shown"):
        assert expected in text, expected

    _pictures(page, "figure.histogram img", 1)  # rain_mm; city is text

    _back(page)
    _follow(page, "table.entries >> text=grid")
    _pictures(page, "figure.heatmap img", 1)
    _back(page)
    _follow(page, "table.entries >> text=note")
    assert "<script>alert(1)</script>" in page.inner_text("main")
    _back(page)
    _follow(page, "table.entries >> text=html_frame")
    assert "<b>x</b>" in page.inner_text("main")
    assert page.locator("main b").count() == 0  # no element made from the file's text
    _back(page)
    _follow(page, "table.entries >> text=canary")
    assert "needs code from the file" in page.inner_text("main")
    assert not made["canary"].exists()


def test_the_store_shows_its_timeline_and_a_diff(page: Any) -> None:
    _follow(page, "text=store")
    text = page.inner_text("main")
    assert "first" in text and "second" in text and "(HEAD)" in text
    _follow(page, "button:has-text('diff')")  # the form: from the older to the newer
    rows = page.inner_text("table.diff")
    assert "added\tadded" in rows and "changed\tgrid" in rows
    _back(page)
    _follow(page, "text=(HEAD) >> xpath=.. >> a")  # the HEAD checkpoint's session
    assert "added" in page.inner_text("table.entries")
    _follow(page, "table.entries >> text=grid")
    assert "max\n22" in page.inner_text("main")


def test_the_history_graph_shows_both_branches_the_fork_and_head(
        page: Any, made: dict[str, Path]) -> None:
    from hibernate.checkpoints import Repo

    repo = Repo(str(made["branches"]), None)
    by_message = {repo.read(c)[0]["message"]: c for c in repo.ids()}
    base, main, experiment = (by_message[m] for m in (
        "base", "main: more rows", "experiment: a discount"))
    _follow(page, "text=branches")
    assert "3 checkpoints, 2 branches" in page.inner_text("main")
    graph = page.locator("svg.graph")
    assert graph.is_visible() and graph.bounding_box()["height"] > 60
    rows = graph.locator("g.checkpoint")
    assert rows.count() == 3
    text = {rows.nth(i).get_attribute("data-id"): rows.nth(i).text_content()
            for i in range(3)}
    assert "experiment: a discount" in text[experiment] and "HEAD" in text[experiment]
    assert f"⎇ {experiment[:8]}" in text[experiment] and f"⎇ {main[:8]}" in text[main]
    assert "fork (2)" in text[base] and "⎇" not in text[base] and "HEAD" not in text[main]
    assert graph.locator("circle.fork").count() == 1
    assert graph.locator("path.edge").count() == 2  # both branches join the fork
    lanes = {graph.locator(f"g.checkpoint[data-id='{c}'] circle").get_attribute("cx")
             for c in (main, experiment)}
    assert len(lanes) == 2  # side by side
    assert page.locator("[style]").count() == 0  # the CSP forbids inline styles
    _follow(page, f"svg.graph g.checkpoint[data-id='{main}'] a text.cid")
    assert "sales" in page.inner_text("table.entries")
    assert main in page.url


def test_a_diff_shows_the_columns_and_rows_that_changed_in_a_frame(
        page: Any, server: str, made: dict[str, Path]) -> None:
    from hibernate.checkpoints import Repo

    repo = Repo(str(made["branches"]), None)
    by_message = {repo.read(c)[0]["message"]: c for c in repo.ids()}
    base = _base(server)
    page.goto(f"{base}/s/2/diff?a={by_message['base']}&b={by_message['main: more rows']}")
    assert "changed\tsales" in page.inner_text("table.diff")
    frame = page.locator("section.frame-diff[data-name='sales']")
    assert frame.locator("dd.columns-changed").inner_text() == "units"
    assert frame.locator("dd.columns-added").inner_text() == "-"
    assert frame.locator("dd.rows-added").inner_text() == "20, 21"
    assert frame.locator("dd.rows-changed").inner_text() == "3"
    assert "rows added (2)" in frame.inner_text() and "rows changed (1)" in frame.inner_text()
    page.goto(f"{base}/s/2/diff?a={by_message['base']}&b={by_message['experiment: a discount']}")
    frame = page.locator("section.frame-diff[data-name='sales']")
    assert frame.locator("dd.columns-added").inner_text() == "discount"
    assert frame.locator("dd.columns-changed").inner_text() == "-"
    assert frame.locator("dd.rows-changed").inner_text() == "-"


def test_a_snippet_for_the_selected_names_and_downloads_of_data(
        page: Any, server: str, made: dict[str, Path]) -> None:
    import io

    import numpy as np

    _follow(page, "text=session.hib")
    assert not page.is_visible("pre.snippet")
    page.check("input.pick[data-name='grid']")
    page.check("input.pick[data-name='note']")
    path = os.path.realpath(made["file"])
    assert page.inner_text("pre.snippet") == (
        f'hibernate.load("{path}", include=["grid", "note"])')

    _follow(page, "table.entries >> text=frame")
    links = page.locator("p.downloads a")
    assert links.all_inner_texts() == ["csv", "parquet"]
    csv = page.request.get(urljoin(page.url, links.first.get_attribute("href")))
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == 'attachment; filename="frame.csv"'
    assert csv.text().splitlines()[:2] == ["city,rain_mm", "city 0,0.0"]
    base = page.url.split("/entry", 1)[0]
    npy = page.request.get(base + "/download?name=grid&format=npy")
    assert npy.status == 200 and 'filename="grid.npy"' in npy.headers["content-disposition"]
    grid = np.load(io.BytesIO(npy.body()), allow_pickle=False)
    assert grid.shape == (3, 4) and grid[2, 3] == 11.0
    named = page.request.get(base + "/download?name=donn%C3%A9es_%C3%A9t%C3%A9&format=npy")
    assert named.status == 200 and named.headers["content-disposition"] == (
        "attachment; filename=\"donn_es__t.npy\"; "
        "filename*=UTF-8''donn%C3%A9es_%C3%A9t%C3%A9.npy")
    pq = page.request.get(base + "/download?name=frame&format=parquet")
    assert pq.status == 200 and pq.body()[:4] == b"PAR1"
    assert "content-length" not in pq.headers  # streamed, never encoded whole first
    assert pd.read_parquet(io.BytesIO(pq.body()))["rain_mm"].iloc[-1] == 43.5
    refused = page.request.get(base + "/download?name=canary&format=npy")
    assert refused.status == 409 and "needs code" in refused.text()
    assert page.request.get(base + "/download?name=note&format=csv").status == 409
    assert page.request.get(base + "/download?name=nope&format=csv").status == 404
    assert not made["canary"].exists()


def test_browse_renders_the_session_inline_with_the_same_escaping(
        browser: Any, made: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from hibernate.viewer import browse

    monkeypatch.setenv("HIBERNATE_CONFIG_DIR", str(made["config"]))
    view = browse(made["file"])
    pg = browser.new_page()
    pg.set_content(view._repr_html_())  # as a notebook shows it: no server, no CSP
    text = pg.text_content("body")  # the previews are folded in <details>
    assert "<script>alert(1)</script>" in text and "<b>x</b>" in text
    assert pg.locator("b").count() == 0
    assert "city 29" in text and "needs code from the file" in text
    assert "frame" in str(view)
    assert not made["canary"].exists()
    pg.close()


def test_downloads_stream_in_pieces_that_add_up_to_the_value(monkeypatch) -> None:
    """Frames go out a row group (CSV: a block of rows) at a time and arrays as slices of
    their own memory, so a download never holds the encoded value whole; the pieces make
    the same file the whole value would."""
    import hibernate.viewer._download as dl

    monkeypatch.setattr(dl, "ROWS", 7)
    monkeypatch.setattr(dl, "PIECE", 100)
    frame = pd.DataFrame({"city": [f"c{i}" for i in range(50)], "x": np.arange(50) / 4,
                          "tag": ["a", None] * 25})
    pieces = list(dl.encode(frame, "csv"))
    assert len(pieces) == 8 and b"".join(pieces).decode() == frame.to_csv(index=False)
    pieces = list(dl.encode(frame, "parquet"))
    assert len(pieces) > 8
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(b"".join(pieces))), frame)
    for array in (np.arange(300.0).reshape(20, 15), np.asfortranarray(
            np.arange(300).reshape(20, 15)), np.arange(600)[::2],
            np.arange(0, 40, dtype="datetime64[s]"), np.arange(40).astype("timedelta64[ms]"),
            np.zeros((0, 3)), np.array(2.5), np.arange(50, dtype=">f8")):
        whole = io.BytesIO()
        np.save(whole, array, allow_pickle=False)
        assert b"".join(dl.encode(array, "npy")) == whole.getvalue()  # as np.save writes
    assert len(list(dl.encode(np.arange(300.0), "npy"))) > 3
    with pytest.raises(dl.Refused):
        dl.encode(pd.DataFrame({"o": [object()]}), "parquet")


def test_entries_are_paginated(tmp_path: Path) -> None:
    import hibernate
    from hibernate.viewer._render import entries_html
    from hibernate.viewer._sources import Source

    hibernate.save(tmp_path / "many.hib", {f"v{i:03d}": i for i in range(450)})
    manifest = Source.at(str(tmp_path / "many.hib")).manifest()
    last = entries_html(manifest, "/s/0", number=2)
    assert "page 3 of 3" in last and "v449" in last and "v399" not in last
    assert last.count("<tr>") == 1 + 50


def test_a_preview_reads_only_the_chunks_of_its_entry(tmp_path: Path) -> None:
    import numpy as np

    import hibernate
    from hibernate.viewer._render import entry_html
    from hibernate.viewer._sources import Source

    path = tmp_path / "big.hib"
    hibernate.save(path, {"big": np.ones(4_000_000), "small": np.arange(10)})
    src = Source.at(str(path))
    entry = next(e for e in src.manifest().entries if e.name == "small")
    with src.open() as snapshot:
        shown = entry_html(entry, snapshot)
        assert "max" in shown and '<figure class="histogram"><img src="data:image/png' in shown
        assert snapshot.bytes_read < path.stat().st_size // 10


def test_serve_refuses_a_path_that_is_neither_a_file_nor_a_store(tmp_path: Path) -> None:
    from hibernate.cli import main

    assert main(["serve", str(tmp_path / "missing.hib")]) == 2


def test_a_post_mortem_shows_its_frames_as_text(browser: Any, tmp_path: Path) -> None:
    from hibernate._run import _save
    from hibernate.viewer._render import postmortem_html, session_html
    from hibernate.viewer._sources import Source

    def failing(tag: str) -> None:
        raise ValueError(tag)

    ns: dict[str, Any] = {"kept": 1}
    try:
        failing("<img src=x>")
    except ValueError as exc:
        _save(str(tmp_path / "pm.hib"), ns, exc)
    m = Source.at(str(tmp_path / "pm.hib")).manifest()
    pg = browser.new_page()
    pg.set_content(session_html(m))
    text = pg.inner_text("section.postmortem")
    assert "post-mortem of ValueError: <img src=x>" in text and "failing" in text
    assert "tag" in text and pg.locator("img").count() == 0
    pg.close()
    assert 'href="/s/0/entry?name=frame1.tag"' in postmortem_html(m, "/s/0")


def test_a_file_and_a_store_on_s3_are_served_and_a_preview_reads_only_its_chunks(
        s3: dict[str, Any], page: Any, tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    import hibernate
    from hibernate.viewer._render import entry_html
    from hibernate.viewer._sources import Source

    opts = s3["options"]
    url, store = "s3://sessions/viewer/big.hib", "s3://sessions/viewer/store"
    hibernate.save(url, {"big": np.ones(2_000_000), "small": pd.DataFrame({"x": range(10)})},
                   storage_options=opts)
    hibernate.checkpoint(store, {"small": np.arange(10)}, message="on <s3>",
                         storage_options=opts)
    size = s3["client"].head_object(Bucket="sessions", Key="viewer/big.hib")["ContentLength"]
    src = Source.at(url, opts)
    assert not src.store and Source.at(store, opts).store
    entry = next(e for e in src.manifest().entries if e.name == "small")
    with src.open() as snapshot:
        assert "min 0, max 9" in entry_html(entry, snapshot)
        assert 0 < snapshot.bytes_read < size // 10  # the trailer, manifest and small's chunks

    flat = ["-o", "key=testing", "-o", "secret=testing", "-o", f"endpoint_url={s3['endpoint']}"]
    env = {"AWS_DEFAULT_REGION": "us-east-1", "HIBERNATE_KEY": TEST_KEY}
    with _serving([url, store, *flat], tmp_path, env) as served:
        page.goto(served)
        _follow(page, "text=big.hib")
        assert "pandas.DataFrame" in page.inner_text("table.entries")
        _follow(page, "table.entries >> text=small")
        assert "min 0, max 9, mean 4.5" in page.inner_text("main")
        page.goto(_base(served) + "/s/1")
        assert "on <s3>" in page.locator("svg.graph").text_content()
        assert "1 checkpoint, 1 branch" in page.inner_text("main")


def test_an_engine_entry_shows_its_record_without_running_an_engine(browser: Any) -> None:
    from hibernate.format import Entry, How, Kind
    from hibernate.viewer._render import entry_html

    parts = [{"path": f"e1/sales/part-{i:05d}.parquet", "rows": 100, "size": 2048,
              "blake3": "ab" * 32} for i in range(25)]
    record = {"engine": "dask", "form": "frame", "format": "parquet", "prefix": "e1/sales",
              "columns": ["region", "<i>units</i>"], "dtypes": ["string", "int64"],
              "rows": 2500, "partitions": parts}
    entry = Entry("sales", Kind.VALUE, "dask.dataframe.DataFrame", 51200, how=How.ENGINE,
                  extra={"engine": record})
    pg = browser.new_page()
    pg.set_content(entry_html(entry, None))  # nothing to read: the record is the manifest's
    facts = pg.inner_text("dl.engine")
    for expected in ("engine\ndask", "form\nframe", "format\nparquet", "partitions\n25",
                     "rows\n2500"):
        assert expected in facts, expected
    assert pg.inner_text("table.columns").splitlines()[1:] == [
        "region\tstring", "<i>units</i>\tint64"]
    assert pg.locator("i").count() == 0
    assert pg.locator("table.partitions tbody tr").count() == 20
    assert "e1/sales/part-00000.parquet\t100\t2.0 KiB" in pg.inner_text("table.partitions")
    assert "5 more partitions" in pg.inner_text("body")
    pg.close()


def test_reports_html_in_a_notebook_leads_with_what_was_not_saved(
        browser: Any, tmp_path: Path) -> None:
    """The reports a notebook shows (``%hibernate save`` / ``load`` in a real kernel), in
    the browser: what was not saved or not restored comes first with its reason, IPython's
    own names are one line, sizes are aligned right, and HTML from the session is text."""
    pytest.importorskip("jupyter_client")
    from test_jupyter import Kernel

    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\nimport socket\nsock = socket.socket()\n"
                    "note = '<img src=x onerror=alert(1)>'\nrows = list(range(5000))\n"
                    "%hibernate save s.hib")
        assert out["error"] is None, out["error"]
        saved = next(h for h in out["html"] if "not saved" in h)
    finally:
        k.close()
    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate load s.hib")
        assert out["error"] is None, out["error"]
        loaded = next(h for h in out["html"] if "restored" in h)
    finally:
        k.close()
    pg = browser.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.set_content(saved)
    captions = [c.strip() for c in pg.locator("caption").all_inner_texts()]
    assert captions[0].startswith("not saved") and captions[-1].startswith("saved"), captions
    first = pg.locator("table").first.locator("tbody tr")
    assert first.first.locator("td").first.inner_text() == "sock"  # what the user made
    own = [r for r in first.all_inner_texts() if "IPython name" in r]
    assert len(own) == 1 and "never saved" in own[0]  # IPython's own names: one line
    size = pg.locator("table").last.locator("tbody tr td:nth-child(4)").first
    assert size.evaluate("e => getComputedStyle(e).textAlign") == "right"
    pg.set_content(loaded)
    text = pg.inner_text("body")
    assert "skipped (" in text and "sock" in text and "note" in text and "restored" in text
    assert text.index("sock") < text.index("rows")  # what was not restored comes first
    assert "_i1" not in text and "In\t" not in text
    assert pg.dialogs == [] and pg.locator("img").count() == 0  # type: ignore[attr-defined]
    pg.close()
