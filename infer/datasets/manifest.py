"""The data manifest: sha256 of every data file, verified on load.

``data/MANIFEST.sha256`` is in ``sha256sum`` format (``HASH  relative/path``), so
``cd data && sha256sum -c MANIFEST.sha256`` checks it without Python too. Covered: every
``.csv`` and ``.toml`` file under ``data/`` (the literature table included); README files are not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ._errors import Problem, raise_problems
from ._paths import MANIFEST, data_dir_of
from .atomic import write_text_atomic

COVERED_SUFFIXES = (".csv", ".toml")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def covered_files(data_dir: str | Path | None = None) -> list[str]:
    """Data files the manifest must list, as sorted POSIX paths relative to the data directory."""
    root = data_dir_of(data_dir)
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # temporary files of an atomic write in progress, hidden files
        if path.is_file() and path.suffix in COVERED_SUFFIXES:
            out.append(rel.as_posix())
    return sorted(out)


def compute_checksums(data_dir: str | Path | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` of the covered files as they are on disk now."""
    root = data_dir_of(data_dir)
    return {rel: sha256_of(root / rel) for rel in covered_files(root)}


def read_manifest(data_dir: str | Path | None = None) -> dict[str, str]:
    """The manifest as ``{relative path: sha256}``; a missing or malformed manifest raises."""
    root = data_dir_of(data_dir)
    path = root / MANIFEST
    if not path.exists():
        raise_problems(
            [
                Problem(
                    "checksum",
                    str(path),
                    None,
                    None,
                    "manifest missing",
                    "run `python -m infer data rehash` after reviewing the data files",
                )
            ]
        )
    entries: dict[str, str] = {}
    problems = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or not rel:
            problems.append(
                Problem(
                    "checksum",
                    MANIFEST,
                    i,
                    None,
                    f"malformed manifest line {line!r}",
                    "each line is 'SHA256  relative/path' (two spaces)",
                )
            )
            continue
        entries[rel.strip()] = digest.lower()
    raise_problems(problems)
    return entries


def verify_manifest(data_dir: str | Path | None = None) -> dict[str, str]:
    """Check every covered file against the manifest; return the verified checksums.

    Raises:
        ChecksumError: naming each file whose hash differs (with both hashes), each file on disk
            that the manifest does not list, and each listed file that is missing.
    """
    root = data_dir_of(data_dir)
    expected = read_manifest(root)
    actual = compute_checksums(root)
    problems = []
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            problems.append(
                Problem(
                    "checksum",
                    rel,
                    None,
                    None,
                    "listed in the manifest but missing on disk",
                    f"restore the file or remove its line from {MANIFEST}",
                )
            )
        elif rel not in expected:
            problems.append(
                Problem(
                    "checksum",
                    rel,
                    None,
                    None,
                    "not listed in the manifest",
                    "validate it, then run `python -m infer data rehash`",
                )
            )
        elif expected[rel] != actual[rel]:
            problems.append(
                Problem(
                    "checksum",
                    rel,
                    None,
                    None,
                    f"sha256 mismatch: manifest {expected[rel]}, file {actual[rel]}",
                    "restore the file from git, or if the change is intended validate it and run "
                    "`python -m infer data rehash`",
                )
            )
    raise_problems(problems)
    return actual


def write_manifest(
    data_dir: str | Path | None = None, checksums: dict[str, str] | None = None
) -> Path:
    """Write the manifest atomically from ``checksums`` (default: the files on disk now)."""
    root = data_dir_of(data_dir)
    checksums = compute_checksums(root) if checksums is None else checksums
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(checksums.items()))
    write_text_atomic(root / MANIFEST, text)
    return root / MANIFEST
