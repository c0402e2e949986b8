"""prep.fsio.file_digest: the one 'hash a file' (booru's md5 check, the latent cache, validate's copies)."""

from __future__ import annotations

import hashlib
import os

import pytest

from prep.fsio import file_digest


def test_digest_matches_hashlib_over_several_blocks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB block, not a multiple of it
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(data).hexdigest()
    assert file_digest(str(path), "blake2b") == hashlib.blake2b(data).hexdigest()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_does_not_hang_the_reader(tmp_path):
    fifo = tmp_path / "planted.png"
    os.mkfifo(fifo)
    assert file_digest(fifo) == hashlib.sha256(b"").hexdigest()  # no writer: read as empty, at once


def test_a_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "absent")
