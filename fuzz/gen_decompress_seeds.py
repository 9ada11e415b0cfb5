"""Write the seed corpus of fuzz/fuzz_decompress.c into fuzz/corpus/decompress/.

    .venv/bin/python fuzz/gen_decompress_seeds.py   (needs zstandard and brotli,
                                                     from requirements-test.txt)

Each seed is the target's four control bytes (codec, cap index and flags;
three piece sizes) and a compressed body: small valid streams of each codec,
several gzip members and zstd frames, bombs that exceed their small cap,
and a few broken ones (truncated, trailing garbage, empty).  The output is
deterministic, so re-running it only rewrites the same files.
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import brotli
import zstandard

GZIP, ZSTD, BR = 0, 1, 2
# Indexes into caps[] of fuzz_decompress.c.
CAP = {1: 0, 100: 3, 1000: 6, 4096: 8, 65535: 9, 65536: 10, 65537: 11, 1 << 20: 15}
EMPTY_LAST = 0x40

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "decompress")


def gz(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip wrapper
    return c.compress(data) + c.flush()


def zs(data: bytes, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)


def br(data: bytes, quality: int = 4) -> bytes:
    return brotli.compress(data, quality=quality)


def seed(codec: int, cap: int, sizes: tuple[int, int, int], body: bytes, flags: int = 0) -> bytes:
    return bytes([codec | CAP[cap] << 2 | flags, *sizes]) + body


TEXT = b"hello, world\n"
JSON = json.dumps([{"id": i, "name": f"user{i % 37}", "ok": i % 3 == 0} for i in range(60)]).encode()
ZEROS = b"\0" * (1 << 20)  # compresses to a few hundred bytes: a small bomb
SKIP = struct.pack("<II", 0x184D2A53, 5) + b"skip!"
# Magic 0xFD2FB527, frame header: window byte (27 - 10) << 3, a raw block
# of one byte, the end block.
SPLIT_HEADER = bytes.fromhex("28b52ffd" "40" "28b52ffd" "20" "04" "210000") + b"EVIL"
LEGACY_V07 = bytes.fromhex("27b52ffd" "00" "88" "400001") + b"A" + bytes.fromhex("c00000")

SEEDS = {
    "gzip_small": seed(GZIP, 1000, (0, 0, 0), gz(TEXT)),
    "gzip_two_members": seed(GZIP, 4096, (3, 7, 255), gz(TEXT) + gz(JSON[:500])),
    "gzip_json_pieces": seed(GZIP, 65536, (1, 16, 200), gz(JSON, 9), EMPTY_LAST),
    "gzip_bomb_cap100": seed(GZIP, 100, (0, 0, 0), gz(ZEROS[: 200 << 10], 9)),
    "gzip_bomb_cap64k": seed(GZIP, 65536, (50, 0, 255), gz(ZEROS, 9)),
    "gzip_truncated": seed(GZIP, 65536, (0, 0, 0), gz(JSON)[:-4]),
    "gzip_empty": seed(GZIP, 1000, (0, 0, 0), b""),
    "zstd_small": seed(ZSTD, 1000, (1, 1, 1), zs(TEXT)),
    "zstd_two_frames": seed(ZSTD, 65537, (0, 0, 0), zs(TEXT) + zs(JSON)),
    "zstd_json_pieces": seed(ZSTD, 4096, (64, 0, 255), zs(JSON, 19), EMPTY_LAST),
    "zstd_bomb_cap4k": seed(ZSTD, 4096, (5, 0, 17), zs(ZEROS)),
    "zstd_trailing_garbage": seed(ZSTD, 1000, (0, 0, 0), zs(TEXT) + b"junk"),
    # RFC 8878 §3.1.2: skippable frames around and between real ones.
    "zstd_skippable": seed(ZSTD, 1 << 20, (3, 5, 0), SKIP + zs(TEXT) + SKIP + zs(JSON)),
    # A pre-1.0 (v0.7) frame asking for a 128 MiB window: libzstd's legacy
    # decoder accepted it and allocated the window until pn_compress.c
    # checked each frame's magic.  Must be BAD, however it is split.
    "zstd_legacy_v07": seed(ZSTD, 1 << 20, (1, 2, 255), LEGACY_V07),
    # A frame header split after its descriptor byte, the rest of it being a
    # whole frame ("EVIL"): libzstd's single-pass shortcut decoded that
    # inner frame when the header came in two pieces, until pn_compress.c
    # gave it each header whole.  Must be BAD, however it is split.
    "zstd_split_header": seed(ZSTD, 1 << 20, (5, 255, 0), SPLIT_HEADER),
    "br_small": seed(BR, 1000, (0, 0, 0), br(TEXT)),
    "br_json_pieces": seed(BR, 65535, (2, 9, 255), br(JSON, 11), EMPTY_LAST),
    "br_bomb_cap1": seed(BR, 1, (0, 0, 0), br(ZEROS[:4096])),
    "br_bomb_cap64k": seed(BR, 65535, (100, 100, 100), br(ZEROS, 11)),
    "br_trailing_byte": seed(BR, 1 << 20, (0, 0, 0), br(TEXT) + b"\0"),
}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
