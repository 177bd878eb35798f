"""Write small EPUB files for tests, byte by byte with zipfile (not with ebooklib, so the
reader is tested against books it did not write): EPUB 3 with a nav document, EPUB 2 with
an NCX only, guides and landmarks, non-linear items, encryption.xml, broken archives."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path


@dataclass
class Doc:
    """A content document. ``body`` is the XHTML inside <body>."""

    href: str
    body: str
    body_type: str | None = None  # epub:type on <body>
    linear: bool = True
    in_spine: bool = True


@dataclass
class Nav:
    title: str
    href: str | None  # None: a heading without a link (EPUB 3 <span>)
    children: list[Nav] = field(default_factory=list)


def xhtml(body: str, *, body_type: str | None = None, title: str = "t") -> str:
    typed = f' epub:type="{body_type}"' if body_type else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{escape(title)}</title></head><body{typed}>{body}</body></html>"
    )


def _nav_list(items: list[Nav]) -> str:
    out = "<ol>"
    for item in items:
        label = (
            f'<a href="{item.href}">{escape(item.title)}</a>'
            if item.href is not None
            else f"<span>{escape(item.title)}</span>"
        )
        out += f"<li>{label}{_nav_list(item.children) if item.children else ''}</li>"
    return out + "</ol>"


def _ncx_points(items: list[Nav], counter: list[int]) -> str:
    out = ""
    for item in items:
        counter[0] += 1
        out += (
            f'<navPoint id="np{counter[0]}" playOrder="{counter[0]}">'
            f"<navLabel><text>{escape(item.title)}</text></navLabel>"
            f'<content src="{item.href}"/>{_ncx_points(item.children, counter)}</navPoint>'
        )
    return out


def write_epub(
    path: Path,
    docs: list[Doc],
    *,
    nav: list[Nav] | None = None,
    ncx: list[Nav] | None = None,
    landmarks: Sequence[tuple[str, str]] = (),
    guide: Sequence[tuple[str, str]] = (),
    nav_in_spine: bool = False,
    title: str = "A Test Book",
    creators: Sequence[tuple[str, str | None]] = (("Ada Writer", "aut"),),
    language: str | None = "en",
    encryption: str | None = None,
    ops_prefix: str = "epub",
) -> Path:
    """Write an EPUB (3.0 when ``nav`` is given, else 2.0 with ``ncx``) to ``path``.
    ``ops_prefix``: the prefix the content documents declare for the OPS namespace (any prefix
    is valid XML; ``epub`` is only the convention)."""
    version = "3.0" if nav is not None else "2.0"
    files: dict[str, str] = {d.href: xhtml(d.body, body_type=d.body_type) for d in docs}
    manifest = [f'<item id="i{n}" href="{d.href}" media-type="application/xhtml+xml"/>' for n, d in enumerate(docs)]
    not_linear = ' linear="no"'
    spine = [f'<itemref idref="i{n}"{"" if d.linear else not_linear}/>' for n, d in enumerate(docs) if d.in_spine]
    if nav is not None:
        marks = "".join(f'<li><a epub:type="{kind}" href="{href}">{kind}</a></li>' for kind, href in landmarks)
        landmark_nav = f'<nav epub:type="landmarks"><ol>{marks}</ol></nav>' if landmarks else ""
        files["nav.xhtml"] = xhtml(f'<nav epub:type="toc"><h1>Contents</h1>{_nav_list(nav)}</nav>{landmark_nav}')
        manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        if nav_in_spine:
            spine.insert(0, '<itemref idref="nav"/>')
    if ncx is not None:
        files["toc.ncx"] = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
            f"<head/><docTitle><text>{escape(title)}</text></docTitle>"
            f"<navMap>{_ncx_points(ncx, [0])}</navMap></ncx>"
        )
        manifest.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    meta = f'<dc:title>{escape(title)}</dc:title><dc:identifier id="uid">urn:test</dc:identifier>'
    for n, (name, role) in enumerate(creators):
        meta += f'<dc:creator id="cr{n}">{escape(name)}</dc:creator>'
        if role:
            meta += f'<meta property="role" refines="#cr{n}" scheme="marc:relators">{role}</meta>'
    if language:
        meta += f"<dc:language>{language}</dc:language>"
    guide_xml = "".join(f'<reference type="{k}" href="{h}" title="{k}"/>' for k, h in guide)
    spine_toc = ' toc="ncx"' if ncx is not None else ""
    files["content.opf"] = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="{version}" '
        'unique-identifier="uid">'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{meta}</metadata>'
        f"<manifest>{''.join(manifest)}</manifest>"
        f"<spine{spine_toc}>{''.join(spine)}</spine>"
        f"{f'<guide>{guide_xml}</guide>' if guide else ''}</package>"
    )
    if ops_prefix != "epub":
        for name, text in list(files.items()):
            if name.endswith(".xhtml"):
                files[name] = text.replace("xmlns:epub=", f"xmlns:{ops_prefix}=").replace(
                    "epub:type=", f"{ops_prefix}:type="
                )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        if encryption is not None:
            archive.writestr("META-INF/encryption.xml", encryption)
        for name, text in files.items():
            archive.writestr(f"OEBPS/{name}", text, compress_type=zipfile.ZIP_DEFLATED)
    return path


def encryption_xml(uri: str, algorithm: str) -> str:
    return (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#">'
        f'<enc:EncryptedData><enc:EncryptionMethod Algorithm="{algorithm}"/>'
        f'<enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
