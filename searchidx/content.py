"""The content folder: which files are articles, and how to tell that one has changed.

A sync compares what is on disk now with what the index remembers. ``size`` and ``mtime`` are
the cheap first test; the content hash decides, so a touched but unchanged file costs a read,
not a re-index. The hash is SHA-256 cut to its first :data:`DIGEST_BYTES` (as rsync's change
detection keeps 128 bits): half the bytes a document in the index, and no file of a folder
collides with its own earlier version by chance.

Paths are kept as Python gives them: a name that is not UTF-8 carries its bad bytes as lone
surrogates (``surrogateescape``), which no index, JSON or page can hold as text. Such a file is
unusable (:func:`check_name`) and reported under :func:`readable_path`; every other name,
including names that differ only in Unicode normalisation, is its own document, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from searchidx.errors import ArticleError

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
_LOWER_SUFFIXES = tuple(ARTICLE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class FileState:
    """What the index remembers of a file to notice when it changes."""

    size: int
    mtime_ns: int
    #: :func:`content_hash` of the file's bytes ("": not read).
    digest: str = ""

    def encode(self) -> str:
        return f"{self.size}:{self.mtime_ns}:{self.digest}"

    @classmethod
    def decode(cls, text: str) -> FileState:
        """A state as :meth:`encode` writes it; one of a whole SHA-256 (written before schema
        10, or by the cluster engine before) with the digest cut as :func:`content_hash` cuts
        it, so the same file still has the same digest."""
        size, mtime_ns, digest = text.split(":", 2)
        return cls(int(size), int(mtime_ns), digest[:_DIGEST_CHARS])

    def packed(self) -> bytes:
        """The state as the index keeps it: :func:`packed_stat`, then the raw digest (32
        bytes: 48 with a whole SHA-256, 4.7 MiB at 100,000 articles; 86 as text)."""
        return packed_stat(self.size, self.mtime_ns) + bytes.fromhex(self.digest)

    @classmethod
    def unpacked(cls, data: bytes) -> FileState:
        """A state kept by :meth:`packed` (its digest cut as :meth:`decode` cuts it), or as
        text (:meth:`encode`) by an index of schema 7 or older: packed, it starts with the
        size's high byte, 0 (no article is that big), where text starts with a digit."""
        if data[:1] != b"\0":
            return cls.decode(data.decode())
        size, mtime_ns = _STAT.unpack_from(data)
        return cls(size, mtime_ns, data[_STAT.size : _STAT.size + DIGEST_BYTES].hex())


#: A file's size and mtime (ns) in a packed state: big-endian, so a packed state starts with
#: 0 (a size below 2**56 bytes).
_STAT = struct.Struct(">Qq")


#: How a packed state (:meth:`FileState.packed`) starts for a file of this size and mtime
#: (``packed_stat(size, mtime_ns)``): a sync tells an unchanged file by this prefix. The
#: struct's own method, called once a listed file: a function around it took a sixth of a
#: sync's comparison of 100,000 files with their states (102 -> 85 ms).
packed_stat = _STAT.pack


#: Bytes of a file's SHA-256 a state keeps. SHA-256, not BLAKE2b with a digest of this size:
#: 2.0 us an article of the benchmark's collection (2.7 KB, SHA instructions) where BLAKE2b
#: took 3.4.
DIGEST_BYTES = 16
_DIGEST_CHARS = 2 * DIGEST_BYTES


def content_hash(data: bytes) -> str:
    """What tells a file's content from another's: its SHA-256's first :data:`DIGEST_BYTES`,
    in hex."""
    return hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]


def scan_content(root: Path) -> dict[str, FileState]:
    """Every article file below ``root`` (relative POSIX path -> size and mtime)."""
    return {path: FileState(info.st_size, info.st_mtime_ns) for path, info in walk_content(root)}


def walk_content(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every article file below ``root``, as found: its relative POSIX path and its stat.

    Hidden files and folders are skipped. Symbolic links are followed only while they stay
    inside ``root``, and each real folder is visited once, so a link loop ends.
    """
    root = root.resolve()
    seen_dirs: set[tuple[int, int]] = set()
    # Plain strings, not Path objects: a sync of 100,000 files spent most of its scan in
    # pathlib. Each folder comes with its path relative to ``root``, ending in "/".
    pending = [(str(root), "")]
    stat = os.stat
    while pending:
        folder, relative = pending.pop()
        try:
            # Files are stat-ed by name within the open folder: a stat of the whole path
            # walks every folder above it again (0.1 s of CPU a listing of 100,000 files).
            handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            info = os.fstat(handle)
            if (info.st_dev, info.st_ino) in seen_dirs:
                continue
            seen_dirs.add((info.st_dev, info.st_ino))
            # The folder's article files listed first, then stat-ed in a loop of their own:
            # a tenth of a listing of 100,000 files less than testing and stat-ing in turn.
            for name in _article_names(folder, handle, relative, root, pending):
                try:
                    info = stat(name, dir_fd=handle)
                except OSError:
                    continue  # vanished or unreadable between listing and stat
                yield relative + name, info
        finally:
            os.close(handle)


def _article_names(
    folder: str, handle: int, relative: str, root: Path, pending: list[tuple[str, str]]
) -> list[str]:
    """The names of the article files in the open ``folder`` (at ``relative`` in ``root``);
    its subfolders to visit are added to ``pending``."""
    names = []
    with os.scandir(handle) as listing:
        entries = list(listing)
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            # A regular file (known from the listing, no stat) or a link to one.
            if entry.is_file(follow_symlinks=False) or (
                entry.is_symlink() and entry.is_file() and _stays_inside(Path(folder, name), root)
            ):
                # The suffix as written most often, else by rfind (no dot: the last
                # character, never a suffix); os.path.splitext took a tenth of a scan.
                if name.endswith(_LOWER_SUFFIXES) or (
                    name[name.rfind(".") :].lower() in ARTICLE_SUFFIXES
                ):
                    names.append(name)
            elif entry.is_dir() and (
                not entry.is_symlink() or _stays_inside(Path(folder, name), root)
            ):
                pending.append((os.path.join(folder, name), f"{relative}{name}/"))
        except OSError:
            continue  # vanished or unreadable between listing and test
    return names


def _stays_inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links resolves to nothing
        return False


def check_name(relpath: str) -> None:
    """Raise :class:`ArticleError` if a file or folder name in ``relpath`` is not UTF-8.

    Not indexed under an escaped form: any escape is also a name someone could give a file,
    so two files could become one document. Renaming is the one faithful fix.
    """
    if _is_utf8(relpath):
        return
    folders = relpath.split("/")[:-1]
    bad_folder = next((folder for folder in folders if not _is_utf8(folder)), None)
    kind = "file" if bad_folder is None else "folder"
    named = "file name" if bad_folder is None else f'folder name "{readable_path(bad_folder)}"'
    raise ArticleError(
        readable_path(relpath),
        f"the {named} is not valid UTF-8 (its bad bytes are shown as \\xNN) and cannot be "
        f"stored as text: rename the {kind}",
    )


def readable_path(relpath: str) -> str:
    """``relpath`` as text to show: the bytes of a name that is not UTF-8 escaped as ``\\xff``."""
    return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    """Whether ``text`` is a name as listed from valid UTF-8 (no escaped bad bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
