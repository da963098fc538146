// Data movement: patches, nearest upsampling, transposes.

/// Cuts non-overlapping p×p patches into token rows: token n = i·w + j (row-major over the patch grid),
/// feature (c, ky, kx) = x[c, i·p + ky, j·p + kx] — the column order of a Conv2d(C, E, k=p, stride=p)
/// weight `[E, C, p, p]`, so `linear(tokens, patches, W)` is the PatchEmbed convolution (embeddings.py:263-388).
// x: [B, C, H, W] -> y: [B, (H/p)·(W/p), C·p·p]
public func patchify(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    batch: Int, channels c: Int, height: Int, width: Int, patch p: Int
) {
    let gh = height / p, gw = width / p, f = c * p * p
    parallelFor(batch * gh, grain: 1) { range in
        for bi in range {
            let b = bi / gh, i = bi % gh
            for j in 0..<gw {
                let row = y + ((b * gh + i) * gw + j) * f
                for ch in 0..<c {
                    for ky in 0..<p {
                        let src = x + ((b * c + ch) * height + i * p + ky) * width + j * p
                        let dst = row + (ch * p + ky) * p
                        for kx in 0..<p { dst[kx] = src[kx] }
                    }
                }
            }
        }
    }
}

/// Inverse of the DiT output head's reshape (dit_transformer_2d.py:207-221, einsum "nhwpqc->nchpwq"):
/// `y[b, c, i·p + py, j·p + px] = x[b, i·w + j, (py·p + px)·Co + c]`, for any grid h × w.
// x: [B, h·w, p·p·Co] -> y: [B, Co, h·p, w·p]
public func unpatchify(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    batch: Int, channels co: Int, gridHeight gh: Int, gridWidth gw: Int, patch p: Int
) {
    let height = gh * p, width = gw * p, f = p * p * co
    parallelFor(batch * co, grain: 1) { range in
        for bc in range {
            let b = bc / co, ch = bc % co
            let plane = y + bc * height * width
            for yy in 0..<height {
                let i = yy / p, py = yy % p
                for xx in 0..<width {
                    let j = xx / p, px = xx % p
                    plane[yy * width + xx] = x[(b * gh * gw + i * gw + j) * f + (py * p + px) * co + ch]
                }
            }
        }
    }
}

/// Nearest-neighbour 2× upsampling (`out[y][x] = in[y/2][x/2]`, upsampling.py:140-190).
// x: [P, H, W] (P = B·C planes) -> y: [P, 2H, 2W]
public func upsampleNearest2x(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int
) {
    upsampleNearest2x(y, x, planes: planes, height: height, width: width, firstRow: 0, rows: 2 * height)
}

/// Output rows `firstRow ..< firstRow + rows` of `upsampleNearest2x` (a strip of the upsampled planes, for a
/// convolution run in row strips that never holds the whole upsampled map).
// x: [P, H, W] -> y: [P, rows, 2W] = rows firstRow ..< firstRow + rows of the [P, 2H, 2W] upsampling
public func upsampleNearest2x(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int, firstRow: Int, rows: Int
) {
    precondition(firstRow >= 0 && rows >= 0 && firstRow + rows <= 2 * height, "upsampleNearest2x: rows outside the image")
    let w2 = 2 * width
    parallelFor(planes * rows, grain: max(1, 16384 / max(w2, 1))) { range in
        for pr in range {
            let p = pr / rows, r = pr % rows
            let src = x + (p * height + (firstRow + r) / 2) * width
            let dst = y + pr * w2
            for j in 0..<width {
                let v = src[j]
                dst[2 * j] = v
                dst[2 * j + 1] = v
            }
        }
    }
}

/// Batched matrix transpose, in 32×32 tiles.
// x: [B, R, C] -> y: [B, C, R]
public func transpose(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, rows: Int, columns: Int
) {
    let tile = 32
    let rowTiles = (rows + tile - 1) / tile
    parallelFor(batch * rowTiles, grain: 1) { range in
        for bt in range {
            let b = bt / rowTiles, r0 = (bt % rowTiles) * tile
            let xs = x + b * rows * columns, ys = y + b * rows * columns
            let r1 = min(rows, r0 + tile)
            var c0 = 0
            while c0 < columns {
                let c1 = min(columns, c0 + tile)
                for r in r0..<r1 {
                    for c in c0..<c1 { ys[c * rows + r] = xs[r * columns + c] }
                }
                c0 = c1
            }
        }
    }
}

/// `F.pixel_shuffle(x, 2)`: `y[b, c, 2i + r, 2j + t] = x[b, 4c + 2r + t, i, j]` (DC-AE up blocks,
/// autoencoder_dc.py `DCUpBlock2d`).
// x: [B, 4C, H, W] -> y: [B, C, 2H, 2W]
public func pixelShuffle2x(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, height h: Int, width w: Int
) {
    parallelFor(batch * c, grain: 1) { range in
        for bc in range {
            let out = y + bc * 4 * h * w
            for r in 0..<2 {
                for t in 0..<2 {
                    let src = x + (bc * 4 + 2 * r + t) * h * w
                    for i in 0..<h {
                        let dst = out + (2 * i + r) * 2 * w + t
                        for j in 0..<w { dst[2 * j] = src[i * w + j] }
                    }
                }
            }
        }
    }
}

/// `F.pixel_unshuffle(x, 2)`: the inverse of `pixelShuffle2x`, `y[b, 4c + 2r + t, i, j] = x[b, c, 2i + r, 2j + t]`
/// (DC-AE down blocks, autoencoder_dc.py `DCDownBlock2d`).
// x: [B, C, 2H, 2W] -> y: [B, 4C, H, W]   (h, w: the output size)
public func pixelUnshuffle2x(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, height h: Int, width w: Int
) {
    parallelFor(batch * c, grain: 1) { range in
        for bc in range {
            let plane = x + bc * 4 * h * w
            for r in 0..<2 {
                for t in 0..<2 {
                    let dst = y + (bc * 4 + 2 * r + t) * h * w
                    for i in 0..<h {
                        let src = plane + (2 * i + r) * 2 * w + t
                        for j in 0..<w { dst[i * w + j] = src[2 * j] }
                    }
                }
            }
        }
    }
}

/// Mean over consecutive groups of channels (`x.unflatten(1, (-1, g)).mean(dim=2)`, DC-AE shortcuts):
/// `y[b, c, s] = (Σ_{i<g} x[b, c·g + i, s]) / g`, summed in Double.
// x: [B, C·g, S] -> y: [B, C, S]
public func channelGroupMean(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, group g: Int, spatial s: Int
) {
    parallelFor(batch * c, grain: max(1, 16_384 / max(s * g, 1))) { range in
        for bc in range {
            let src = x + bc * g * s, dst = y + bc * s
            for j in 0..<s {
                var acc = 0.0
                for i in 0..<g { acc += Double(src[i * s + j]) }
                dst[j] = Float(acc / Double(g))
            }
        }
    }
}

/// Each channel repeated `r` times in place (`x.repeat_interleave(r, dim=1)`, DC-AE shortcuts):
/// `y[b, c·r + i, s] = x[b, c, s]`.
// x: [B, C, S] -> y: [B, C·r, S]
public func repeatChannels(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, repeats r: Int, spatial s: Int
) {
    parallelFor(batch * c * r, grain: max(1, 16_384 / max(s, 1))) { range in
        for index in range {
            (y + index * s).update(from: x + (index / r) * s, count: s)
        }
    }
}

/// `y += pixel_shuffle(repeat_interleave(x, r, dim=1), 2)` with `r = 4·Co / C` (the DC-AE up block's shortcut,
/// autoencoder_dc.py:151-190) without the repeated and shuffled maps: `y[b, c, 2i + a, 2j + t] +=
/// x[b, (4c + 2a + t) / r, i, j]`, the same float additions as `add(y, y, pixelShuffle2x(repeatChannels(x)))`.
// x: [B, C, H, W], y: [B, Co, 2H, 2W] (4·Co a multiple of C), y updated in place
public func addPixelShuffledRepeat(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels c: Int, outChannels co: Int,
    height h: Int, width w: Int
) {
    precondition(c > 0 && (4 * co) % c == 0, "addPixelShuffledRepeat: 4·\(co) channels do not repeat \(c)")
    let r = 4 * co / c
    parallelFor(batch * co, grain: 1) { range in
        for bc in range {
            let b = bc / co, ch = bc % co
            let out = y + bc * 4 * h * w
            for a in 0..<2 {
                for t in 0..<2 {
                    let src = x + (b * c + (4 * ch + 2 * a + t) / r) * h * w
                    for i in 0..<h {
                        let dst = out + (2 * i + a) * 2 * w + t
                        for j in 0..<w { dst[2 * j] = dst[2 * j] + src[i * w + j] }
                    }
                }
            }
        }
    }
}

/// Bilinear resize, `F.interpolate(x, size=(Ho, Wo), mode="bilinear", align_corners=False)` without antialiasing
/// (torch UpSampleBilinear2d on CPU): per axis `src = max(scale·(dst + 0.5) − 0.5, 0)` with `scale = Float(in) / Float(out)`,
/// `i0 = Int(src)`, `i1 = i0 + (i0 < in − 1 ? 1 : 0)`, `λ1 = src − i0`, `λ0 = 1 − λ1`; output
/// `λ0h·(λ0w·x[i0h, i0w] + λ1w·x[i0h, i1w]) + λ1h·(λ0w·x[i1h, i0w] + λ1w·x[i1h, i1w])`.
// x: [P, H, W] (P = B·C planes) -> y: [P, Ho, Wo]
public func resizeBilinear(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
    outHeight ho: Int, outWidth wo: Int
) {
    func axis(_ n: Int, _ out: Int, _ j: Int) -> (Int, Int, Float, Float) {
        let scale = Float(n) / Float(out)
        let src = Swift.max(scale * (Float(j) + 0.5) - 0.5, 0)
        let i0 = Int(src), i1 = i0 + (i0 < n - 1 ? 1 : 0)
        let l1 = Swift.min(Swift.max(src - Float(i0), 0), 1)
        return (i0, i1, 1 - l1, l1)
    }
    parallelFor(planes * ho, grain: max(1, 4096 / max(wo, 1))) { range in
        for row in range {
            let p = row / ho, oy = row % ho
            let (y0, y1, a0, a1) = axis(h, ho, oy)
            let top = x + (p * h + y0) * w, bottom = x + (p * h + y1) * w, dst = y + row * wo
            for ox in 0..<wo {
                let (x0, x1, b0, b1) = axis(w, wo, ox)
                dst[ox] = a0 * (b0 * top[x0] + b1 * top[x1]) + a1 * (b0 * bottom[x0] + b1 * bottom[x1])
            }
        }
    }
}
