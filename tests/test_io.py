"""Atomic writes: all or nothing, with ordinary file permissions."""

import os
import stat

import pytest

from gaba_control._io import atomic_path, atomic_write_text


def test_written_file_has_umask_permissions_not_private(tmp_path):
    target = atomic_write_text(tmp_path / "a" / "out.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert target.read_text() == "hello"


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
