"""The notebook corpus (whole-session issue): real-looking analysis notebooks
(``tests/notebooks``), executed with nbclient in real kernels, interrupted at their split,
restored in a fresh kernel with replay, and finished there: every cell after the split must
give the outputs it gave in the run that was never interrupted (``notebook_harness``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from notebook_harness import code_cells, interrupt_and_resume  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_restored_at_its_split_finishes_as_it_would_have(path: Path,
                                                                     tmp_path: Path) -> None:
    import nbformat

    meta = nbformat.read(path, as_version=4).metadata["hibernate"]
    split = meta["split"]
    # the replay each notebook needs: true unless stated; "all" where a cell the replay needs
    # also writes the notebook's input files (06, 07); false where everything is stored (16)
    replay = meta.get("replay", True)
    # the notebook's directory is copied into the run's (17 imports a module from helpers/)
    got = interrupt_and_resume(code_cells(path), split, tmp_path, replay, siblings=path.parent)
    assert not any(kind == "error" for kind, _ in got.save), got.save
    assert not any(kind == "error" for out in got.reference for kind, _ in out), got.reference
    assert not any(kind == "error" for kind, _ in got.load), got.load
    for i in got.differing():
        raise AssertionError(f"cell {split + i} of {path.name} differs after the restore",
                             got.after[i], got.reference[i], got.resumed[i], got.load)


def test_the_corpus_has_fifteen_notebooks() -> None:
    assert len(NOTEBOOKS) >= 15
