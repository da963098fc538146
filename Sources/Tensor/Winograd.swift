// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2015): each 2×2 output tile is `Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A` with d the 4×4 input tile, so the
// 9 multiply-adds per output pixel and input channel of im2col + sgemm become 4, done as 16 sgemms
// `M[e] = U[e]·V[e]` (e = one of the 4×4 transformed positions) over a chunk of whole tile rows:
//   U = G g Gᵀ   (weights, [16][O][C], transformed per call: 16·O·C floats, small beside the products)
//   V = Bᵀ d B   (input tiles, [16][C][T])
//   Y = Aᵀ M A   (output tiles, from M: [16][O][T]), bias and `accumulate` applied here.
// with G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]], Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]],
// Aᵀ = [[1,1,1,0],[0,1,−1,−1]] (cross-correlation, as torch's Conv2d). The chunk depends only on the geometry,
// and each batch item is computed alone, so results do not depend on the batch size.

extension Conv2dGeometry {
    /// Whether the Winograd F(2×2, 3×3) kernel can compute this convolution (3×3, stride 1, padding ≤ 2).
    public var winogradApplies: Bool {
        kernel == 3 && stride == 1 && outHeight > 0 && outWidth > 0
            && [padTop, padBottom, padLeft, padRight].allSatisfy { (0...2).contains($0) }
    }
    /// Tiles of 2×2 output pixels: rows, columns.
    var winogradTileRows: Int { (outHeight + 1) / 2 }
    var winogradTileColumns: Int { (outWidth + 1) / 2 }
    /// Floats for the transformed weights, `[16][O][C]`.
    var winogradWeightCount: Int { 16 * outChannels * inChannels }
    /// Scratch for one tile row (the least the Winograd kernel accepts).
    public var winogradMinimumScratch: Int {
        winogradWeightCount + 16 * (inChannels + outChannels) * winogradTileColumns
    }
    /// Scratch for the whole image's tiles, capped at `limit` floats (but ≥ `winogradMinimumScratch`).
    public func winogradScratchCount(limit: Int = 1 << 24) -> Int {
        let full = winogradWeightCount + 16 * (inChannels + outChannels) * winogradTileColumns * winogradTileRows
        return max(winogradMinimumScratch, min(full, limit))
    }
    /// Tile rows per chunk that `scratchCount` floats hold.
    func winogradChunkRows(scratchCount: Int) -> Int {
        let perRow = 16 * (inChannels + outChannels) * winogradTileColumns
        return max(1, min(winogradTileRows, (scratchCount - winogradWeightCount) / perRow))
    }
}

/// 3×3 stride-1 convolution through Winograd F(2×2, 3×3) (see the file comment); same contract as `conv2d`.
// x: [B, C, H, W], w: [O, C, 3, 3], b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ geometry.winogradMinimumScratch floats
public func conv2dWinograd(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool = false
) {
    precondition(g.winogradApplies, "conv2dWinograd: needs a 3×3, stride-1 convolution with padding ≤ 2")
    precondition(scratchCount >= g.winogradMinimumScratch, "conv2dWinograd: scratch smaller than one tile row")
    let c = g.inChannels, o = g.outChannels, tw = g.winogradTileColumns, th = g.winogradTileRows
    let chunkRows = g.winogradChunkRows(scratchCount: scratchCount), tc = chunkRows * tw
    let u = scratch, v = u + g.winogradWeightCount, m = v + 16 * c * tc
    winogradWeights(u, w, outChannels: o, inChannels: c)
    for item in 0..<batch {
        let xi = x + item * c * g.height * g.width, yi = y + item * o * g.outHeight * g.outWidth
        var ty0 = 0
        while ty0 < th {
            let rows = min(chunkRows, th - ty0), n = rows * tw
            winogradInput(v, xi, g, firstTileRow: ty0, tileRows: rows, ldv: tc)
            for e in 0..<16 {
                sgemm(transA: false, transB: false, m: o, n: n, k: c, alpha: 1,
                      u + e * o * c, lda: c, v + e * c * tc, ldb: tc, beta: 0, m + e * o * tc, ldc: tc)
            }
            winogradOutput(yi, m, b, g, firstTileRow: ty0, tileRows: rows, ldm: tc, accumulate: accumulate)
            ty0 += rows
        }
    }
}

/// U[e][o][c] = (G·w[o, c]·Gᵀ)[e].
// w: [O, C, 3, 3] -> u: [16, O, C]
func winogradWeights(_ u: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int) {
    let oc = o * c
    parallelFor(oc, grain: 256) { range in
        for i in range {
            let k = w + i * 9
            // t = G·k: [4, 3]
            var t = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
            t.0 = k[0]; t.1 = k[1]; t.2 = k[2]
            t.3 = 0.5 * (k[0] + k[3] + k[6]); t.4 = 0.5 * (k[1] + k[4] + k[7]); t.5 = 0.5 * (k[2] + k[5] + k[8])
            t.6 = 0.5 * (k[0] - k[3] + k[6]); t.7 = 0.5 * (k[1] - k[4] + k[7]); t.8 = 0.5 * (k[2] - k[5] + k[8])
            t.9 = k[6]; t.10 = k[7]; t.11 = k[8]
            // u = t·Gᵀ: [4, 4], row r from (a, b, c) = t[r]
            func row(_ r: Int, _ a: Float, _ b: Float, _ cc: Float) {
                u[(r * 4 + 0) * oc + i] = a
                u[(r * 4 + 1) * oc + i] = 0.5 * (a + b + cc)
                u[(r * 4 + 2) * oc + i] = 0.5 * (a - b + cc)
                u[(r * 4 + 3) * oc + i] = cc
            }
            row(0, t.0, t.1, t.2); row(1, t.3, t.4, t.5); row(2, t.6, t.7, t.8); row(3, t.9, t.10, t.11)
        }
    }
}

/// V[e][c][(ty − firstTileRow)·Tw + tx] = (Bᵀ·d·B)[e] for the 4×4 input tile d at rows 2·ty − padTop ..< +4,
/// columns 2·tx − padLeft ..< +4 (zeros outside the image). Each (channel, tile row) copies its four input rows
/// into a zero-padded strip first, so the tile loop has no bounds checks.
// x: [C, H, W] -> v: [16, C, ldv]
func winogradInput(
    _ v: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: Conv2dGeometry,
    firstTileRow: Int, tileRows: Int, ldv: Int
) {
    let c = g.inChannels, h = g.height, wd = g.width, tw = g.winogradTileColumns
    let stripWidth = 2 * tw + 2, plane = c * ldv
    parallelFor(c * tileRows, grain: 1) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * stripWidth) { strip in
            let d = strip.baseAddress!
            for index in range {
                let ch = index / tileRows, r = index % tileRows, ty = firstTileRow + r
                let src = x + ch * h * wd
                // strip row i = input row 2·ty − padTop + i, column j = input column j − padLeft
                for i in 0..<4 {
                    let row = d + i * stripWidth, iy = 2 * ty - g.padTop + i
                    row.update(repeating: 0, count: stripWidth)
                    guard iy >= 0, iy < h else { continue }
                    let lo = g.padLeft, count = min(wd, stripWidth - lo)
                    (row + lo).update(from: src + iy * wd, count: count)
                }
                let d0 = d, d1 = d + stripWidth, d2 = d + 2 * stripWidth, d3 = d + 3 * stripWidth
                let out = v + ch * ldv + r * tw
                for tx in 0..<tw {
                    let a = 2 * tx
                    // t = Bᵀ·d (rows), then each row times B (columns)
                    let t0 = (d0[a] - d2[a], d0[a + 1] - d2[a + 1], d0[a + 2] - d2[a + 2], d0[a + 3] - d2[a + 3])
                    let t1 = (d1[a] + d2[a], d1[a + 1] + d2[a + 1], d1[a + 2] + d2[a + 2], d1[a + 3] + d2[a + 3])
                    let t2 = (d2[a] - d1[a], d2[a + 1] - d1[a + 1], d2[a + 2] - d1[a + 2], d2[a + 3] - d1[a + 3])
                    let t3 = (d1[a] - d3[a], d1[a + 1] - d3[a + 1], d1[a + 2] - d3[a + 2], d1[a + 3] - d3[a + 3])
                    @inline(__always) func put(_ i: Int, _ t: (Float, Float, Float, Float)) {
                        out[(i * 4 + 0) * plane + tx] = t.0 - t.2
                        out[(i * 4 + 1) * plane + tx] = t.1 + t.2
                        out[(i * 4 + 2) * plane + tx] = t.2 - t.1
                        out[(i * 4 + 3) * plane + tx] = t.1 - t.3
                    }
                    put(0, t0); put(1, t1); put(2, t2); put(3, t3)
                }
            }
        }
    }
}

/// y[o, 2·ty + i, 2·tx + j] (+)= bias[o] + (Aᵀ·M·A)[i, j] for the tiles of the chunk, clipped to the output.
// m: [16, O, ldm] -> y: [O, Ho, Wo]
func winogradOutput(
    _ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ g: Conv2dGeometry,
    firstTileRow: Int, tileRows: Int, ldm: Int, accumulate: Bool
) {
    let o = g.outChannels, ho = g.outHeight, wo = g.outWidth, tw = g.winogradTileColumns, plane = o * ldm
    parallelFor(o * tileRows, grain: 1) { range in
        for index in range {
            let oc = index / tileRows, r = index % tileRows, oy = 2 * (firstTileRow + r)
            let bias = b?[oc] ?? 0
            let src = m + oc * ldm + r * tw
            let row0 = y + (oc * ho + oy) * wo, hasRow1 = oy + 1 < ho, row1 = row0 + wo
            for tx in 0..<tw {
                @inline(__always) func at(_ e: Int) -> Float { src[e * plane + tx] }
                // s = first row of Aᵀ·M, q = second: per column j
                let s0 = at(0) + at(4) + at(8), s1 = at(1) + at(5) + at(9)
                let s2 = at(2) + at(6) + at(10), s3 = at(3) + at(7) + at(11)
                let q0 = at(4) - at(8) - at(12), q1 = at(5) - at(9) - at(13)
                let q2 = at(6) - at(10) - at(14), q3 = at(7) - at(11) - at(15)
                let ox = 2 * tx, hasColumn1 = ox + 1 < wo
                let y00 = s0 + s1 + s2 + bias, y01 = s1 - s2 - s3 + bias
                let y10 = q0 + q1 + q2 + bias, y11 = q1 - q2 - q3 + bias
                if accumulate {
                    row0[ox] += y00
                    if hasColumn1 { row0[ox + 1] += y01 }
                    if hasRow1 {
                        row1[ox] += y10
                        if hasColumn1 { row1[ox + 1] += y11 }
                    }
                } else {
                    row0[ox] = y00
                    if hasColumn1 { row0[ox + 1] = y01 }
                    if hasRow1 {
                        row1[ox] = y10
                        if hasColumn1 { row1[ox + 1] = y11 }
                    }
                }
            }
        }
    }
}
