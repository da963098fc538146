// Convolutions over a 16-bit weight `[O, C, k, k]` kept 16-bit in memory (an autoencoder held as bf16 costs half
// its float32 bytes). A bf16 weight on a CPU with bf16 dot products goes through oneDNN's bf16 direct kernel
// (DNNLConv2d.swift, `DNNLConvolution.directBF16`: the input rounded to bf16 per call, products accumulated in
// float32, float32 output), in the same row strips and one batch item per call as the float32 kernels. Anything
// else (f16 weights, CPUs without AVX512_BF16, `DARKROOM_BF16_DOT_PRODUCTS=off`, shapes oneDNN has no bf16 kernel
// for) widens the weight to float32 into the front of the caller's scratch for the call and runs `conv2d` on it:
// the numbers of the float32 kernels over the rounded weight, and no float32 copy outlives the call.

/// The most output rows one strip of oneDNN's bf16 kernel computes (stride-1 convolutions).
let bf16StripMaxRows = 64

extension Conv2dGeometry {
    /// Output rows per strip for oneDNN's bf16 kernel: at most `bf16StripMaxRows`, fewer where the general scratch
    /// limit asks (`dnnlStripRows`); nil where oneDNN refuses the shape. A direct kernel pays only the two halo rows
    /// per strip (no Winograd tiles to fill), so its scratch — the strip's blocked bf16 input and float32 output —
    /// is kept to a strip: 256→256 channels at 256², 26 MiB in 64-row strips against 97 MiB whole.
    public var bf16StripRows: Int? {
        guard let rows = dnnlStripRows(.directBF16) else { return nil }
        return stride == 1 ? min(rows, bf16StripMaxRows) : rows
    }

    /// Scratch floats of oneDNN's bf16 kernel in strips of `bf16StripRows` (0 where oneDNN refuses).
    public var bf16DNNLScratchCount: Int {
        guard let rows = bf16StripRows else { return 0 }
        let bytes = dnnlStripBytes(.directBF16, rows: rows)
        return bytes == 0 ? 0 : (bytes + 3) / 4 + 16  // + 16: room to align to 64 bytes
    }

    /// Whether `conv2d(half:)` takes oneDNN's bf16 kernel for a weight of `format` on this CPU.
    public func prefersBF16DNNL(_ format: HalfMatrix.Format, bf16DotProducts: Bool = bf16DotProductsEnabled) -> Bool {
        format == .bf16 && bf16DotProducts && DNNL.hasBF16DotProducts && dnnlStripRows(.directBF16) != nil
    }

    /// Floats of scratch the widened weight takes (rounded up to keep what follows 64-byte aligned).
    var widenedWeightCount: Int { (outChannels * patchLength + 15) / 16 * 16 }

    /// Scratch floats `conv2d(half:)` needs for a weight of `format`: one strip of oneDNN's bf16 kernel (but at least
    /// the widened weight and one im2col row, so a oneDNN refusal can still widen), else the widened weight plus
    /// `scratchCount()` for the float32 kernels.
    public func scratchCount(half format: HalfMatrix.Format, bf16DotProducts: Bool = bf16DotProductsEnabled) -> Int {
        if prefersBF16DNNL(format, bf16DotProducts: bf16DotProducts) {
            return max(bf16DNNLScratchCount, widenedWeightCount + minimumScratch)
        }
        return widenedWeightCount + scratchCount()
    }
}

/// 2-D convolution over a 16-bit weight (see the file comment); same contract as `conv2d`. `bf16DotProducts`
/// false forces the widening path (tests; the environment's `DARKROOM_BF16_DOT_PRODUCTS` by default).
// x: [B, C, H, W], w: [O, C, k, k] (16-bit), b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ geometry.scratchCount(half:)
public func conv2d(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, half w: HalfMatrix, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool = false, threads: Int = blasThreadCount, bf16DotProducts: Bool = bf16DotProductsEnabled
) {
    precondition(w.count == g.outChannels * g.patchLength, "conv2d: weight \(w.shape) does not fit \(g)")
    if w.format == .bf16 && bf16DotProducts
        && conv2dDNNL(y, x, bf16: w.pointer, b, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                      accumulate: accumulate, threads: threads) {
        return
    }
    let n = g.widenedWeightCount
    precondition(scratchCount >= n + g.minimumScratch, "conv2d: scratch cannot hold the widened weight")
    widen(scratch, w.pointer, count: w.count, format: w.format)
    conv2d(y, x, scratch, b, batch: batch, geometry: g, scratch: scratch + n, scratchCount: scratchCount - n,
           accumulate: accumulate)
}
