#!/usr/bin/env python3
"""Lays PNGs out in a grid PNG plus an HTML page with their labels (stdlib only: zlib).

    grid.py OUT.png OUT.html LABEL=IMAGE.png ...
"""
import html
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 2, f"{path}: only 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * 3, [], bytearray(w * 3)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def write_png(path, w, h, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    out_png, out_html, items = sys.argv[1], sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]
    images = [(label, path, read_png(path)) for label, path in items]
    cols = min(6, len(images))
    cw = max(i[2][0] for i in images) + 4
    ch = max(i[2][1] for i in images) + 4
    nrows = (len(images) + cols - 1) // cols
    W, H = cols * cw, nrows * ch
    canvas = [bytearray(b"\x20" * (W * 3)) for _ in range(H)]
    for k, (_, _, (w, h, rows)) in enumerate(images):
        ox, oy = (k % cols) * cw + 2, (k // cols) * ch + 2
        for y in range(h):
            canvas[oy + y][ox * 3:(ox + w) * 3] = rows[y]
    write_png(out_png, W, H, [bytes(r) for r in canvas])
    cells = "".join(f'<figure><img src="{html.escape(p)}" width="{max(96, w)}"><figcaption>{html.escape(l)}</figcaption></figure>'
                    for l, p, (w, _, _) in images)
    open(out_html, "w").write("<!doctype html><title>Darkroom demo</title><style>figure{display:inline-block;margin:6px;"
                              "text-align:center;font:12px sans-serif}img{image-rendering:pixelated}</style>" + cells)


if __name__ == "__main__":
    main()
