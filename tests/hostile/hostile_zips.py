"""Hostile ZIP archives, built on demand (a bomb is small compressed but would be large checked in)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

MB = 1024 * 1024


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def bomb() -> bytes:
    """One member of 64 MB of zeros: tens of kilobytes compressed, past every ratio and size limit."""
    return _zip([("seeds.csv", b"q,a\n" + b"0" * (64 * MB))])


def ratio_bomb() -> bytes:
    """40 MB of zeros: under the total limit, but compressed a thousand to one."""
    return _zip([("seeds.csv", b"q,a\n" + b"0" * (40 * MB))])


def many_small_bombs() -> bytes:
    """Sixty members of 1 MB each: none alone is large, together they pass the 50 MB total."""
    return _zip([(f"part{i}.csv", b"q,a\n" + b"1" * MB) for i in range(60)])


def lying_sizes() -> bytes:
    """A member whose central directory claims 1 KB but which inflates to 4 MB."""
    data = bytearray(_zip([("seeds.csv", b"q,a\n" + b"2" * (4 * MB))]))
    header = data.rindex(b"PK\x01\x02")  # central directory entry: uncompressed size at offset 24
    data[header + 24 : header + 28] = struct.pack("<I", 1024)
    return bytes(data)


def path_traversal(name: str) -> bytes:
    """A member named to escape the extraction folder (``../x``, ``/etc/x``, ``C:\\x``, ``a\\..\\b``)."""
    info = zipfile.ZipInfo(name)
    return _zip([(info, b"q,a\nescaped,yes\n")])


def symlink() -> bytes:
    """A member that is a symbolic link to /etc/passwd, beside an ordinary file."""
    link = zipfile.ZipInfo("seeds.csv")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([(link, b"/etc/passwd"), ("other.csv", b"q,a\nx,y\n")])


def too_many_members() -> bytes:
    """Six thousand empty entries: the directory alone is the attack."""
    return _zip([(f"d/{i}.txt", b"") for i in range(6000)])


def truncated() -> bytes:
    """A valid archive cut in half."""
    whole = _zip([("seeds.csv", b"q,a\n" + b"hello,world\n" * 1000)])
    return whole[: len(whole) // 2]


def nested() -> bytes:
    """A ZIP holding only another ZIP (which is not read)."""
    return _zip([("inner.zip", bomb())])
