import Glibc

/// Shape of a 2-D convolution with a square kernel (torch `Conv2d` / `F.pad` + `Conv2d`).
/// Padding may be asymmetric: the VAE encoder's Downsample2D pads (left 0, right 1, top 0, bottom 1).
public struct Conv2dGeometry: Sendable, Hashable {
    public var inChannels: Int
    public var outChannels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padTop: Int
    public var padBottom: Int
    public var padLeft: Int
    public var padRight: Int

    public init(
        inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1,
        padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padTop = padTop
        self.padBottom = padBottom
        self.padLeft = padLeft
        self.padRight = padRight
    }

    /// Symmetric padding on all four sides.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int) {
        self.init(inChannels: inChannels, outChannels: outChannels, height: height, width: width, kernel: kernel,
                  stride: stride, padTop: padding, padBottom: padding, padLeft: padding, padRight: padding)
    }

    public var outHeight: Int { (height + padTop + padBottom - kernel) / stride + 1 }
    public var outWidth: Int { (width + padLeft + padRight - kernel) / stride + 1 }
    /// Rows of the im2col matrix (= columns of the weight seen as `[O, C·k·k]`).
    public var patchLength: Int { inChannels * kernel * kernel }
    /// A 1×1, stride-1, unpadded convolution is a plain matrix product and needs no scratch.
    public var isPointwise: Bool {
        kernel == 1 && stride == 1 && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }
    /// Scratch floats for one output row of im2col: the least `conv2d` accepts (0 if pointwise).
    public var minimumScratch: Int { isPointwise ? 0 : patchLength * outWidth }
    /// Scratch that holds the whole im2col matrix, capped at `limit` floats (but ≥ `minimumScratch`); for a
    /// convolution `conv2d` runs through Winograd, the larger of that and `winogradScratchCount(limit: 2·limit)`.
    /// For one `conv2d` runs through oneDNN (`prefersDNNL`), the larger of that and `dnnlScratchCount`.
    public func scratchCount(limit: Int = 1 << 23) -> Int {
        if isPointwise { return 0 }
        let im2col = max(minimumScratch, min(patchLength * outHeight * outWidth, limit))
        let own = prefersWinograd ? max(im2col, winogradScratchCount(limit: 2 * limit)) : im2col
        return prefersDNNL.map { max(own, dnnlScratchCount($0)) } ?? own
    }

    /// Scratch for `conv2d` forced to `algorithm` (benchmarks and tests).
    public func scratchCount(for algorithm: Conv2dAlgorithm) -> Int {
        switch algorithm {
        case .automatic, .im2col: return scratchCount()
        case .winograd: return max(scratchCount(), winogradScratchCount())
        case .dnnlWinograd: return max(minimumScratch, dnnlScratchCount(.winograd))
        case .dnnlDirect: return max(minimumScratch, dnnlScratchCount(.direct))
        }
    }

    /// Whether `conv2d` (automatic) takes the Winograd kernel, given enough scratch: 3×3 stride-1 convolutions
    /// with at least 256 input and output channels and at least 256 output tiles (32×32 pixels). Measured
    /// (docs/benchmarks.md, "3×3 convolutions"): Winograd wins 1.3–1.6× at 512 channels on 32² and 64², 256 on 128²;
    /// it loses at 128 channels on 256² (the tile transforms cost more than the products they save) and at
    /// 1024 channels on 16² (the per-call weight transform outweighs 64 tiles).
    /// Which oneDNN kernel `conv2d` (automatic) takes, if any (DNNLConv2d.swift). Measured (docs/benchmarks.md,
    /// "3×3 convolutions"): oneDNN's Winograd F(4×4, 3×3) wins 1.5–3× over im2col and our F(2×2, 3×3) from
    /// 128² pixels up at 128–512 channels, and loses below (512 × 32², 512 × 64², 1024 × 16²: its per-call weight
    /// transform, 36 floats per 3×3 filter, outweighs the few tiles). Only on CPUs with AVX-512 (the kernel is
    /// avx512_core only) and channels multiples of 16; images whose scratch (blocked input and output and the
    /// transformed tiles) would exceed `dnnlScratchLimit(_:)` floats run in row strips (DNNLConv2d.swift), so peak
    /// memory stays bounded.
    /// `DARKROOM_DNNL_CONVOLUTIONS=off` in the environment keeps every convolution on our kernels (side-by-side
    /// benchmarks).
    public var prefersDNNL: DNNLConvolution? {
        guard dnnlConvolutionsEnabled, DNNL.hasAVX512, winogradApplies, stride == 1, padTop == 1, padBottom == 1, padLeft == 1, padRight == 1,
              inChannels % 16 == 0, outChannels % 16 == 0, inChannels >= 128, outChannels >= 128,
              height * width >= 128 * 128 else { return nil }
        return dnnlStripRows(.winograd) != nil ? .winograd : nil
    }

    public var prefersWinograd: Bool {
        winogradApplies && inChannels >= 256 && outChannels >= 256 && winogradTileRows * winogradTileColumns >= 256
    }
}

/// False when the environment says `DARKROOM_DNNL_CONVOLUTIONS=off` (read once).
public let dnnlConvolutionsEnabled: Bool = environmentSwitch("DARKROOM_DNNL_CONVOLUTIONS")


/// Which kernel `conv2d` uses: `automatic` takes Winograd where `prefersWinograd` says so and the scratch holds
/// it, im2col + sgemm elsewhere; the others force one (tests and benchmarks). im2col is the reference.
public enum Conv2dAlgorithm: String, Sendable, CaseIterable {
    case automatic, im2col, winograd
    /// oneDNN's Winograd F(4×4, 3×3) or direct kernel (DNNLConv2d.swift); im2col where oneDNN has none.
    case dnnlWinograd = "dnnl-winograd", dnnlDirect = "dnnl-direct"
}

/// 2-D convolution; 3×3 stride-1 ones with enough channels through Winograd F(2×2, 3×3) (Winograd.swift), the
/// others (and all with `algorithm: .im2col`, the reference) through im2col + sgemm: the weight `[O, C, k, k]` is
/// used as it lies, as `[O, C·k·k]`;
/// for each batch item the output is computed in tiles of whole output rows, `Y[:, tile] = W·col(tile)`,
/// where `col` (in `scratch`, `patchLength × tileColumns`) holds input pixels in (c, ky, kx) order with
/// zeros where the window leaves the padded image. With `accumulate`, adds into `y` (`y += conv(x) + b`),
/// e.g. onto a residual already in place. Pointwise convolutions skip im2col.
// x: [B, C, H, W], w: [O, C, k, k], b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ geometry.minimumScratch floats
public func conv2d(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>?, scratchCount: Int,
    accumulate: Bool = false, algorithm: Conv2dAlgorithm = .automatic
) {
    let dnnl: DNNLConvolution? = switch algorithm {
    case .automatic: g.prefersDNNL
    case .dnnlWinograd: .winograd
    case .dnnlDirect: .direct
    case .im2col, .winograd: nil
    }
    if let dnnl, let scratch, !g.isPointwise,
       conv2dDNNL(y, x, w, b, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                  accumulate: accumulate, kind: dnnl, threads: blasThreadCount) {
        return
    }
    if let scratch, algorithm != .im2col, algorithm != .dnnlDirect, algorithm != .dnnlWinograd, !g.isPointwise,
       algorithm == .winograd || (g.prefersWinograd && scratchCount >= g.winogradMinimumScratch) {
        conv2dWinograd(y, x, w, b, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                       accumulate: accumulate)
        return
    }
    let ho = g.outHeight, wo = g.outWidth, hw = ho * wo, o = g.outChannels, kk = g.patchLength
    var beta: Float = accumulate ? 1 : 0
    if let b {
        parallelFor(batch * o, grain: max(1, 16_384 / max(hw, 1))) { range in
            for bo in range {
                let plane = y + bo * hw, bias = b[bo % o]
                if accumulate {
                    for j in 0..<hw { plane[j] += bias }
                } else {
                    plane.update(repeating: bias, count: hw)
                }
            }
        }
        beta = 1
    }
    if g.isPointwise {
        for item in 0..<batch {
            sgemm(transA: false, transB: false, m: o, n: hw, k: g.inChannels, alpha: 1,
                  w, lda: g.inChannels, x + item * g.inChannels * g.height * g.width, ldb: hw,
                  beta: beta, y + item * o * hw, ldc: hw)
        }
        return
    }
    guard let scratch else { preconditionFailure("conv2d: a non-pointwise convolution needs scratch") }
    precondition(scratchCount >= g.minimumScratch, "conv2d: scratch smaller than one output row of im2col")
    let tileRows = min(ho, scratchCount / (kk * wo))
    for item in 0..<batch {
        let xi = x + item * g.inChannels * g.height * g.width
        var r0 = 0
        while r0 < ho {
            let rows = min(tileRows, ho - r0)
            im2col(scratch, xi, g, firstRow: r0, rows: rows)
            sgemm(transA: false, transB: false, m: o, n: rows * wo, k: kk, alpha: 1,
                  w, lda: kk, scratch, ldb: rows * wo,
                  beta: beta, y + item * o * hw + r0 * wo, ldc: hw)
            r0 += rows
        }
    }
}

/// Unfolds output rows `firstRow ..< firstRow + rows` of one image into `col[(c·k + ky)·k + kx, (r·Wo + ox)]`.
// x: [C, H, W] -> col: [C·k·k, rows·Wo]
func im2col(_ col: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: Conv2dGeometry, firstRow: Int, rows: Int) {
    let k = g.kernel, s = g.stride, wo = g.outWidth, n = rows * wo
    parallelFor(g.patchLength, grain: 1) { range in
        for rowIndex in range {
            let c = rowIndex / (k * k), ky = (rowIndex / k) % k, kx = rowIndex % k
            let plane = x + c * g.height * g.width
            let dst = col + rowIndex * n
            // Output columns whose input column ox·s − padLeft + kx lies inside [0, W).
            let oxLo = min(wo, max(0, (g.padLeft - kx + s - 1) / s))
            let oxHi = max(oxLo, min(wo, (g.width - 1 + g.padLeft - kx) / s + 1))
            for r in 0..<rows {
                let d = dst + r * wo
                let iy = (firstRow + r) * s - g.padTop + ky
                if iy < 0 || iy >= g.height {
                    d.update(repeating: 0, count: wo)
                    continue
                }
                let src = plane + iy * g.width - g.padLeft + kx
                for ox in 0..<oxLo { d[ox] = 0 }
                if s == 1 {
                    (d + oxLo).update(from: src + oxLo, count: oxHi - oxLo)
                } else {
                    for ox in oxLo..<oxHi { d[ox] = src[ox * s] }
                }
                for ox in oxHi..<wo { d[ox] = 0 }
            }
        }
    }
}

/// Depthwise 2-D convolution, stride 1, zero padding k/2 on every side (torch `Conv2d(C, C, k, padding=k//2,
/// groups=C)`: GLUMBConv's `conv_depth`, sana_transformer.py:55; DC-AE's multi-scale `proj_in`,
/// attention_processor.py:850-857): `y[b, c, i, j] = bias[c] + Σ_{ky,kx} w[c, ky, kx]·x[b, c, i+ky−k/2, j+kx−k/2]`.
// x: [B, C, H, W], w: [C, 1, k, k], b: [C]? -> y: [B, C, H, W]
public func depthwiseConv2d(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    batch: Int, channels c: Int, height h: Int, width wd: Int, kernel k: Int
) {
    let pad = k / 2, hw = h * wd
    parallelFor(batch * c, grain: max(1, 4096 / max(hw * k * k, 1))) { range in
        for bc in range {
            let ch = bc % c
            let plane = x + bc * hw, out = y + bc * hw, wc = w + ch * k * k
            let bias = b?[ch] ?? 0
            for i in 0..<h {
                let row = out + i * wd
                for j in 0..<wd { row[j] = bias }
                for ky in 0..<k {
                    let yy = i + ky - pad
                    if yy < 0 || yy >= h { continue }
                    let src = plane + yy * wd
                    for kx in 0..<k {
                        let weight = wc[ky * k + kx], dx = kx - pad
                        let j0 = max(0, -dx), j1 = min(wd, wd - dx)
                        if j0 >= j1 { continue }
                        for j in j0..<j1 { row[j] += weight * src[j + dx] }
                    }
                }
            }
        }
    }
}

/// Grouped 1×1 convolution without bias (DC-AE's multi-scale `proj_out`, `Conv2d(3I, 3I, 1, groups=3·heads)`,
/// attention_processor.py:858): group g maps channels g·G ..< (g+1)·G to the same range with its own `[G, G]`
/// block of `w`, one sgemm per (item, group).
// x: [B, groups·G, S], w: [groups·G, G, 1, 1] -> y: [B, groups·G, S]
public func groupedPointwiseConv2d(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
    batch: Int, groups: Int, groupChannels g: Int, spatial s: Int
) {
    let c = groups * g
    for item in 0..<batch {
        for group in 0..<groups {
            sgemm(transA: false, transB: false, m: g, n: s, k: g, alpha: 1,
                  w + group * g * g, lda: g, x + (item * c + group * g) * s, ldb: s,
                  beta: 0, y + (item * c + group * g) * s, ldc: s)
        }
    }
}

/// A fast-path switch from the environment, read once by its caller: on unless `name` is off, 0, false or no.
func environmentSwitch(_ name: String) -> Bool {
    guard let v = getenv(name) else { return true }
    return !["off", "0", "false", "no"].contains(String(cString: v).lowercased())
}
