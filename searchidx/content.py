"""The content folder: which files are articles, and how to tell that one has changed.

A sync compares what is on disk now with what the index remembers. ``size`` and ``mtime`` are
the cheap first test; the content hash decides, so a touched but unchanged file costs a read,
not a re-index.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".txt"})


@dataclass(frozen=True, slots=True)
class FileState:
    """What the index remembers of a file to notice when it changes."""

    size: int
    mtime_ns: int
    sha256: str = ""

    def encode(self) -> str:
        return f"{self.size}:{self.mtime_ns}:{self.sha256}"

    @classmethod
    def decode(cls, text: str) -> FileState:
        size, mtime_ns, sha256 = text.split(":", 2)
        return cls(int(size), int(mtime_ns), sha256)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scan_content(root: Path) -> dict[str, FileState]:
    """Every article file below ``root`` (relative POSIX path -> size and mtime).

    Hidden files and folders are skipped. Symbolic links are followed only while they stay
    inside ``root``, and each real folder is visited once, so a link loop ends.
    """
    root = root.resolve()
    found: dict[str, FileState] = {}
    seen_dirs: set[tuple[int, int]] = set()
    # Plain strings, not Path objects: a sync of 100,000 files spent most of its scan in
    # pathlib. Each folder comes with its path relative to ``root``, ending in "/".
    pending = [(str(root), "")]
    while pending:
        folder, relative = pending.pop()
        try:
            info = os.stat(folder)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen_dirs:
            continue
        seen_dirs.add((info.st_dev, info.st_ino))
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_symlink() and not _stays_inside(Path(entry.path), root):
                continue
            try:
                if entry.is_dir():
                    pending.append((entry.path, f"{relative}{name}/"))
                elif entry.is_file() and os.path.splitext(name)[1].lower() in ARTICLE_SUFFIXES:
                    stat = entry.stat()
                    found[relative + name] = FileState(stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue  # vanished or unreadable between listing and stat
    return found


def _stays_inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links resolves to nothing
        return False
