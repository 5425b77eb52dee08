"""confgen.chem.files: atomic writes (text, binary, callback, JSON) and directory installs."""

import json
import os

import numpy as np
import pytest

from confgen.chem.files import AtomicFile, atomic_write, install_directory, write_json
from confgen.errors import ConfgenError


def test_atomic_write_publishes_with_normal_permissions_and_leaves_nothing_on_error(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "sub" / "out.json", lambda fh: fh.write("{}"))
    finally:
        os.umask(old)
    out = tmp_path / "sub" / "out.json"
    assert out.read_text() == "{}" and (out.stat().st_mode & 0o777) == 0o644  # not mkstemp's 0600

    def fail(fh):
        fh.write("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(out, fail)
    assert out.read_text() == "{}" and sorted(p.name for p in out.parent.iterdir()) == ["out.json"]


def test_atomic_write_data_binary_and_mode(tmp_path):
    atomic_write(tmp_path / "a.txt", "text\n")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    atomic_write(tmp_path / "c.bin", lambda fh: fh.write(b"xy"), binary=True, mode=0o600)
    assert (tmp_path / "a.txt").read_text() == "text\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.bin").read_bytes() == b"xy" and ((tmp_path / "c.bin").stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.bin"]


def test_atomic_file_discard_keeps_the_old_file_and_missing_directory_is_refused(tmp_path):
    out = tmp_path / "out.sdf"
    out.write_text("old")
    f = AtomicFile(out)
    f.fh.write("new")
    f.discard()
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.sdf"]
    with pytest.raises(ConfgenError, match="does not exist"):
        AtomicFile(tmp_path / "nodir" / "x", make_dirs=False)


def test_write_json_finite_writes_null_and_plain_numbers(tmp_path):
    write_json(tmp_path / "a.json", {"x": float("nan"), "y": np.float32(1.5), "z": (np.int64(2), float("inf"))},
               finite=True)
    text = (tmp_path / "a.json").read_text()
    assert text.endswith("\n") and json.loads(text) == {"x": None, "y": 1.5, "z": [2, None]}
    write_json(tmp_path / "b.json", {"a": [1, 2]})
    assert (tmp_path / "b.json").read_text() == json.dumps({"a": [1, 2]}, indent=1) + "\n"


def test_install_directory_replaces_only_with_overwrite(tmp_path):
    out = tmp_path / "data"
    for k, overwrite in enumerate((False, True)):
        tmp = tmp_path / f"tmp{k}"
        tmp.mkdir()
        (tmp / "v").write_text(str(k))
        install_directory(tmp, out, overwrite=overwrite)
        assert (out / "v").read_text() == str(k) and not tmp.exists()
    tmp = tmp_path / "tmp2"
    tmp.mkdir()
    with pytest.raises(ConfgenError, match="already exists"):
        install_directory(tmp, out, overwrite=False)
    assert (out / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tmp2"]
