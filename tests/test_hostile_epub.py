"""Hostile EPUBs (a zip of XML from strangers): each is refused before anything is inflated or
parsed that could hurt, with one line naming the file and the problem, exit 2, nothing written."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.epub_builder import Doc, Nav, write_epub
from tests.jobs import write_job

_LAUGHS = (
    '<!DOCTYPE html [<!ENTITY a "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    + "]>"
)
_EXTERNAL = '<!DOCTYPE html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def _good_book(path: Path) -> Path:
    return write_epub(path, [Doc("c.xhtml", "<h1>One</h1><p>Safe words to say.</p>")], nav=[Nav("One", "c.xhtml")])


def _rewrite(book: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(book) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    edit(files)
    with zipfile.ZipFile(book, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return book


def _content(dtd: str, reference: str) -> bytes:
    return (
        f'<?xml version="1.0"?>{dtd}<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>One</h1>'
        f"<p>Safe {reference} words.</p></body></html>"
    ).encode()


def zip_bomb(book: Path) -> Path:
    return _rewrite(book, lambda f: f.update({"OEBPS/c.xhtml": b"\0" * (70 * 2**20)}))


def ratio_bomb(book: Path) -> Path:
    return _rewrite(book, lambda f: f.update({"OEBPS/images/x.png": b"\0" * (5 * 2**20)}))


def entity_bomb(book: Path) -> Path:
    return _rewrite(book, lambda f: f.update({"OEBPS/c.xhtml": _content(_LAUGHS, "&i;")}))


def external_entity(book: Path) -> Path:
    return _rewrite(book, lambda f: f.update({"OEBPS/c.xhtml": _content(_EXTERNAL, "&x;")}))


def href_out_of_the_archive(book: Path) -> Path:
    def edit(files: dict[str, bytes]) -> None:
        files["OEBPS/content.opf"] = files["OEBPS/content.opf"].replace(
            b'href="c.xhtml"', b'href="../../../etc/passwd"'
        )

    return _rewrite(book, edit)


def missing_spine_item(book: Path) -> Path:
    return _rewrite(book, lambda f: f.pop("OEBPS/c.xhtml"))


CASES = {
    "zip-bomb-entry": (zip_bomb, "unpacks to 70 MB"),
    "zip-bomb-ratio": (ratio_bomb, "inflates"),
    "entity-bomb": (entity_bomb, "declares XML entities"),
    "external-entity": (external_entity, "declares XML entities"),
    "href-outside-the-archive": (href_out_of_the_archive, "book.epub"),
    "missing-spine-item": (missing_spine_item, "book.epub"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_epub_is_one_line_exit_2_and_nothing_written(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, needle = CASES[case]
    book = make(_good_book(tmp_path / "book.epub"))
    job = write_job(tmp_path, input={"files": [str(book)]})
    code = main(["run", str(job), "--yes"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("narrate: error: book.epub"), err
    assert needle in lines[0]
    assert "root:" not in err  # nothing of /etc/passwd was read into anything
    assert not (tmp_path / "out").exists()


def test_the_good_book_the_cases_start_from_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the same book untouched validates, so each case fails for its own reason."""
    job = write_job(tmp_path, input={"files": [str(_good_book(tmp_path / "book.epub"))]})
    assert main(["validate", str(job)]) == 0, capsys.readouterr().err
