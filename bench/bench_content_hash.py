"""Cost of the dataset key's content hash (:func:`clipsafety.files.content_digests`).

A ``folder:`` or real dataset's manifest hashes every image's bytes, once per file: digests
are cached by (path, size, mtime, ctime, inode) in memory and in
``$CLIPSAFETY_CACHE/file-digests.sqlite``. This measures, for ``--n`` files of ImageNet's
average size (``--kb``, 128 KiB: ImageNet val is 6.4 GB / 50,000 files):

- cold: the first manifest (every file read and hashed; files in the page cache, so this
  is the CPU cost; a cold disk adds its read time, which loading the images pays anyway);
- warm, new process: the digest cache on disk (stat + one SQLite lookup per file);
- warm, same process: the in-memory cache (stat only).

The ``--n`` paths are hard links to ``--unique`` distinct files, so 50,000 paths need only
``unique * kb`` of disk. ``python bench/bench_content_hash.py [--n 50000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="files (paths) to hash")
    ap.add_argument("--unique", type=int, default=500, help="distinct files behind the paths")
    ap.add_argument("--kb", type=int, default=128, help="size of each file in KiB")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clipsafety-bench-hash-") as tmp:
        tmp = Path(tmp)
        os.environ["CLIPSAFETY_CACHE"] = str(tmp / "cache")
        from clipsafety import files

        src = tmp / "src"
        src.mkdir()
        rng = __import__("numpy").random.default_rng(0)
        for i in range(args.unique):
            (src / f"{i}.jpg").write_bytes(rng.integers(0, 256, args.kb * 1024, dtype="uint8").tobytes())
        paths = []
        for i in range(args.n):
            d = tmp / "data" / f"c{i // 1000:03d}"
            if i % 1000 == 0:
                d.mkdir(parents=True)
            p = d / f"{i}.jpg"
            os.link(src / f"{i % args.unique}.jpg", p)
            paths.append(p)
        gb = args.n * args.kb / 2**20

        t0 = time.perf_counter()
        cold = files.content_digests(paths)
        t_cold = time.perf_counter() - t0
        files._DIGESTS.clear()  # as a new process: only the on-disk cache
        t0 = time.perf_counter()
        warm = files.content_digests(paths)
        t_db = time.perf_counter() - t0
        t0 = time.perf_counter()
        files.content_digests(paths)
        t_mem = time.perf_counter() - t0
        assert cold == warm
        print(f"{args.n} files x {args.kb} KiB ({gb:.2f} GiB), {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"  cold (read + sha256):       {t_cold:8.2f} s  {1e3 * t_cold / args.n:7.3f} ms/file  "
              f"{gb * 1024 / t_cold:7.0f} MiB/s  -> 50,000 files: {50_000 * t_cold / args.n:7.1f} s")
        print(f"  warm, new process (SQLite): {t_db:8.2f} s  {1e3 * t_db / args.n:7.3f} ms/file"
              f"                -> 50,000 files: {50_000 * t_db / args.n:7.1f} s")
        print(f"  warm, same process:         {t_mem:8.2f} s  {1e3 * t_mem / args.n:7.3f} ms/file"
              f"                -> 50,000 files: {50_000 * t_mem / args.n:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
