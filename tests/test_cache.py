"""The decoded-image cache's housekeeping: it says what it writes, stays under a cap, lists and clears itself,
fails cleanly on a full disk, removes what killed writers left, and remembers images a --skip-bad run left out."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from squeezenet.cli import cache as cache_cmd
from squeezenet.cli.common import Parser
from squeezenet.data.cache import decode_cached, decode_square, decoded_cache_paths
from squeezenet.data.cache_store import cache_entries, max_cache_bytes, remove_temps
from squeezenet.data.folders import list_samples
from squeezenet.errors import SqueezeNetError


@pytest.fixture(autouse=True)
def default_cap(monkeypatch):
    monkeypatch.delenv("SQUEEZENET_CACHE_MAX_GB", raising=False)


def _cli(*argv: str) -> int:
    p = Parser(prog="squeezenet cache")
    cache_cmd.add_arguments(p)
    return cache_cmd.run(p.parse_args(list(argv)))


def test_a_write_is_reported_listed_and_cleared(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    samples = list_samples(folder)
    decode_cached(samples, 32, cache, progress=False)
    err = capsys.readouterr().err
    npy, meta = decoded_cache_paths(samples, 32, cache)
    assert f"cache: wrote 10 images at 32px (0 MB) to {npy}; total 0 MB of 20,000 MB" in err
    assert json.loads(meta.read_text())["root"] == str(folder.resolve())
    decode_cached(samples, 32, cache, progress=False, warp=True)
    (cache / "notes.txt").write_text("not the cache's")  # --clear removes only what the cache wrote
    (cache / f".{npy.name}.{os.getpid()}.abcd1234.tmp").write_bytes(b"x" * 100)
    capsys.readouterr()
    assert _cli("--dir", str(cache)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["source", "folder", "side", "mode", "images", "MB", "last", "used"]
    assert [r.split()[:4] for r in out[1:3]] == [[str(folder.resolve()), "32", m, "10"] for m in ("warp", "shorter")]
    assert out[3].startswith("2 entries, 0 MB of the 20,000 MB cap") and str(cache) in out[3]
    assert _cli("--dir", str(cache), "--clear") == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert os.listdir(cache) == ["notes.txt"]
    assert _cli("--dir", str(tmp_path / "none")) == 0 and "0 entries" in capsys.readouterr().out


def test_least_recently_used_entries_are_evicted_to_fit_the_cap(folder, tmp_path, capsys):
    cache, samples = tmp_path / "cache", list_samples(folder)
    for side in (32, 33, 32):  # the second 32 is a hit: 32 is now more recently used than 33
        time.sleep(0.05)  # beyond the file system's clock tick
        decode_cached(samples, side, cache, progress=False)
    capsys.readouterr()
    decode_cached(samples, 34, cache, progress=False, max_bytes=80_000)  # room for two of the three
    assert "evicted 1 least recently used" in capsys.readouterr().err
    assert sorted(e.side for e in cache_entries(cache)) == [32, 34]
    assert sum(e.bytes for e in cache_entries(cache)) <= 80_000
    with pytest.raises(SqueezeNetError, match=r"needs 0 MB, more than the cache's cap of 0 MB: raise it "
                                              r"\(SQUEEZENET_CACHE_MAX_GB="):
        decode_cached(samples, 40, cache, progress=False, max_bytes=10_000)
    assert sorted(e.side for e in cache_entries(cache)) == [32, 34]  # refused before evicting anything


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE_MAX_GB", "0.5")
    assert max_cache_bytes() == 500_000_000
    for bad in ("lots", "0", "-1"):
        monkeypatch.setenv("SQUEEZENET_CACHE_MAX_GB", bad)
        with pytest.raises(SqueezeNetError, match="SQUEEZENET_CACHE_MAX_GB must be a positive number"):
            max_cache_bytes()


def test_no_space_is_an_error_before_any_row_is_written(folder, tmp_path, monkeypatch):
    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    decoded = []
    monkeypatch.setattr("squeezenet.data.cache.decode_square", lambda *a, **kw: decoded.append(a))
    with pytest.raises(SqueezeNetError, match=f"no space left in {tmp_path / 'cache'} for the decoded cache's 0 MB"):
        decode_cached(list_samples(folder), 32, tmp_path / "cache", progress=False)
    assert not decoded and os.listdir(tmp_path / "cache") == []


def test_a_full_tmpfs_is_one_error_not_a_sigbus(folder, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:  # a subprocess: a regression would be a SIGBUS, which must not take pytest with it
        code = ("import sys; from squeezenet.data.cache import decode_cached; from squeezenet.data.folders import "
                "list_samples; decode_cached(list_samples(sys.argv[1]), 400, sys.argv[2], progress=False)")
        r = subprocess.run([sys.executable, "-c", code, str(folder), str(small)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1 and "SqueezeNetError: no space left in" in r.stderr and "for the decoded " \
            "cache's 5 MB" in r.stderr
        assert os.listdir(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_stale_temp_files_are_removed_at_the_next_write(folder, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    npy, _ = decoded_cache_paths(list_samples(folder), 32, cache)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {"old": f".{npy.name}.k3j9x_2q.tmp", "fresh": f".{npy.name}.h2l8z0aa.tmp",
             "dead": f".{npy.name}.{gone.stdout.strip()}.p0q1r2s3.tmp",
             "alive": f".{npy.name}.{os.getpid()}.a1b2c3d4.tmp", "other": ".other.npy.k3j9x_2q.tmp"}
    for key, name in names.items():
        (cache / name).write_bytes(b"x")
        if key in ("old", "alive", "other"):
            os.utime(cache / name, (time.time() - 7200, time.time() - 7200))
    decode_cached(list_samples(folder), 32, cache, progress=False)
    assert {k for k, n in names.items() if (cache / n).exists()} == {"fresh", "alive", "other"}
    assert remove_temps(cache, stale_only=False) == 2 and (cache / names["other"]).exists()


def test_an_image_left_out_by_skip_bad_stops_a_run_without_it(folder, tmp_path):
    cache = tmp_path / "cache"
    paths = sorted(folder.glob("*/*"))
    bad = paths[3]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated JPEG
    with pytest.warns(UserWarning, match=bad.name):
        d = decode_cached(list_samples(folder), 32, cache, skip_bad=True, progress=False)
    good = [p for p in paths if p != bad]
    assert d.images.shape == (9, 32, 32, 3) and d.skipped == [str(bad)]
    assert np.array_equal(d.images, np.stack([decode_square(p, 32) for p in good]))  # rows packed, header rewritten
    assert os.path.getsize(decoded_cache_paths(list_samples(folder), 32, cache)[0]) == 128 + 9 * 32 * 32 * 3
    said = rf"cannot read image {re.escape(str(bad))}: .*an earlier run with --skip-bad left it out of the decoded"
    with pytest.raises(SqueezeNetError, match=said + " cache: pass --skip-bad again, or fix or remove the file"):
        decode_cached(list_samples(folder), 32, cache, progress=False)
    assert len(decode_cached(list_samples(folder), 32, cache, skip_bad=True, progress=False)) == 9  # a hit


def test_a_fifo_in_the_data_is_an_error_and_leaves_nothing(folder, tmp_path):
    fifo = folder / sorted(os.listdir(folder))[0] / "x.JPEG"
    os.mkfifo(fifo)
    result: list = []

    def decode() -> None:
        try:
            decode_cached(list_samples(folder), 32, tmp_path / "cache", progress=False)
        except SqueezeNetError as e:
            result.append(e)

    t = threading.Thread(target=decode, daemon=True)  # a hang fails the test instead of blocking the run
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "decode_cached hangs on a FIFO"
    assert result and "x.JPEG" in str(result[0]) and "not a regular file" in str(result[0])
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []
