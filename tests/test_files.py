"""dimr.files.atomic_write: the target is the old file or the new one, never half of one."""
import pytest

from dimr.files import atomic_write, stale_temporaries


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "record.json"
    atomic_write(path, lambda f: f.write("old"))
    assert path.read_text() == "old"

    def half_then_crash(f):
        f.write("new, but only ha")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old"
    assert list(stale_temporaries(path)) == [] and sorted(p.name for p in path.parent.iterdir()) == ["record.json"]


def test_binary_writes_and_the_leftovers_of_a_killed_write_are_found(tmp_path):
    path = tmp_path / "latest.pt"
    atomic_write(path, lambda f: f.write(b"\x00\x01"), binary=True)
    assert path.read_bytes() == b"\x00\x01"
    leftover = tmp_path / ".latest.pt.abc123.tmp"  # what SIGKILL between mkstemp and os.replace leaves
    leftover.write_bytes(b"\x00")
    (tmp_path / ".other.pt.abc123.tmp").write_bytes(b"")  # another file's: not ours to delete
    assert list(stale_temporaries(path)) == [leftover]
