"""Expanding targets: folders, globs, URL lists and unknown inputs."""

from __future__ import annotations

from pathlib import Path

from mmrag.ingest.sources import expand_sources

SUFFIXES = frozenset({".jpg", ".png", ".pdf"})


def test_folders_are_walked_recursively_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for name in ("a/one.jpg", "a/b/two.PNG", "a/notes.txt", ".cache/three.jpg", "doc.pdf"):
        (tmp_path / name).write_bytes(b"x")
    sources, errors = expand_sources([str(tmp_path)], SUFFIXES)
    names = sorted(Path(s.location).name for s in sources)
    assert names == ["doc.pdf", "one.jpg", "two.PNG"] and not errors


def test_globs_urls_and_url_lists(tmp_path: Path) -> None:
    for name in ("x.jpg", "y.jpg", "z.png"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "more.urls"
    listing.write_text("# comment\nhttps://example.com/a.jpg\n\n" + str(tmp_path / "z.png") + "\n")
    sources, errors = expand_sources([str(tmp_path / "*.jpg"), str(listing)], SUFFIXES)
    assert sorted(s.location.rsplit("/", 1)[1] for s in sources) == [
        "a.jpg",
        "x.jpg",
        "y.jpg",
        "z.png",
    ]
    assert [s.is_url for s in sources].count(True) == 1 and not errors


def test_missing_and_unsupported_targets_are_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "empty").mkdir()
    _, errors = expand_sources(
        [str(tmp_path / "nope.jpg"), str(tmp_path / "notes.txt"), str(tmp_path / "empty")],
        SUFFIXES,
    )
    reasons = {Path(e.source).name: e.reason for e in errors}
    assert reasons == {
        "nope.jpg": "no such file or folder",
        "notes.txt": "unsupported file type '.txt'",
        "empty": "no indexable files found",
    }


def test_duplicates_are_listed_once(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"x")
    sources, _ = expand_sources([str(tmp_path), str(tmp_path / "x.jpg")], SUFFIXES)
    assert len(sources) == 1
