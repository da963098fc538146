// 3×3 convolutions through oneDNN (Debian's libdnnl 2.6): its Winograd F(4×4, 3×3) kernel (`jit_wino_4x3`,
// avx512_core, float32), its direct kernel (`brgconv`/`jit`, float32) or its direct kernel over bf16 inputs and
// weights (`jit:avx512_core_bf16`/`brgconv:avx512_core_bf16`, AVX512_BF16 `vdpbf16ps`: the input is rounded to bf16
// by the input reorder, products accumulate in float32, the output is float32), one batch item per call. oneDNN's fast
// kernels want channel-blocked layouts (`nChw16c`) and their own weight layout, so each call reorders the weight
// and the input into the caller's scratch, runs the convolution, and reorders the result back to NCHW (adding
// into `y` when accumulating). Everything lives in the caller's scratch (`Conv2dGeometry.dnnlScratchCount`).
// Large images run in row strips (stride-1 convolutions): output rows r0 ..< r0 + n are the convolution of input
// rows r0 − padTop ..< r0 + n − padTop + k, clipped to the image, with the padding only where a strip meets the
// image's edge; the strip is read from and written to the caller's NCHW planes in place (strided descriptors),
// so the scratch holds one strip's blocked input, output and transformed tiles, not the whole image's.
import CDNNL
import Glibc

/// The oneDNN convolution kernels `conv2d` can use. `directBF16` takes a bf16 weight (`[O, C, k, k]` bf16 bits) and
/// rounds the input to bf16 (nearest, ties to even, as `x.to(torch.bfloat16)`); it exists on CPUs with AVX512_BF16.
public enum DNNLConvolution: Sendable, Hashable {
    case winograd, direct, directBF16

    /// The element type of the input and weight oneDNN computes with.
    var dataType: dnnl_data_type_t { self == .directBF16 ? dnnl_bf16 : dnnl_f32 }
}

private struct DNNLConvKey: Hashable, Sendable {
    let geometry: Conv2dGeometry
    let kind: DNNLConvolution
    let bias: Bool
    let accumulate: Bool
    /// Rows of the caller's whole input and output planes (a channel's stride is rows · width); equal to the
    /// geometry's own when the convolution runs in one piece.
    let inputRows: Int
    let outputRows: Int
}

/// The four primitives of one oneDNN convolution and where their buffers sit in the caller's scratch.
final class DNNLConv2d: @unchecked Sendable {
    let convolution: DNNLPrimitive
    let inputReorder: DNNLPrimitive
    let weightReorder: DNNLPrimitive
    let outputReorder: DNNLPrimitive
    /// The weight's blocked layout: strips whose layouts are equal share one weight reorder.
    let blockedWeight: dnnl_memory_desc_t
    /// Byte offsets into the scratch: blocked weight (at 0, so strips share it), blocked input, blocked output,
    /// then the scratchpads.
    let inputOffset: Int, outputOffset: Int, scratchpadOffset: Int
    /// Total bytes of scratch one call needs.
    let scratchBytes: Int

    init?(_ g: Conv2dGeometry, kind: DNNLConvolution, bias: Bool, accumulate: Bool, inputRows: Int, outputRows: Int) {
        guard g.stride >= 1, g.kernel >= 1, inputRows >= g.height, outputRows >= g.outHeight else { return nil }
        let c = g.inChannels, o = g.outChannels
        guard let userSrc = dnnlStridedDesc([1, c, g.height, g.width], strides: [c * inputRows * g.width, inputRows * g.width, g.width, 1]),
              let userWei = dnnlDesc([o, c, g.kernel, g.kernel], kind.dataType, dnnl_oihw),
              let userDst = dnnlStridedDesc([1, o, g.outHeight, g.outWidth],
                                            strides: [o * outputRows * g.outWidth, outputRows * g.outWidth, g.outWidth, 1]),
              var src = dnnlDesc([1, c, g.height, g.width], kind.dataType, dnnl_format_tag_any),
              var wei = dnnlDesc([o, c, g.kernel, g.kernel], kind.dataType, dnnl_format_tag_any),
              var dst = dnnlDesc([1, o, g.outHeight, g.outWidth], dnnl_f32, dnnl_format_tag_any),
              var b = dnnlDesc([o], dnnl_f32, dnnl_a) else { return nil }
        var desc = dnnl_convolution_desc_t()
        let strides: [Int64] = [Int64(g.stride), Int64(g.stride)]
        let padL: [Int64] = [Int64(g.padTop), Int64(g.padLeft)], padR: [Int64] = [Int64(g.padBottom), Int64(g.padRight)]
        let alg = kind == .winograd ? dnnl_convolution_winograd : dnnl_convolution_direct
        let made = bias
            ? dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, alg, &src, &wei, &b, &dst, strides, padL, padR)
            : dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, alg, &src, &wei, nil, &dst, strides, padL, padR)
        guard made == dnnl_success else { return nil }
        // The layouts oneDNN chose (blocked) come back from a probe primitive descriptor.
        guard let engine = DNNL.engine else { return nil }
        var probe: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&probe, &desc, nil, engine, nil) == dnnl_success, let probe else { return nil }
        defer { dnnl_primitive_desc_destroy(probe) }
        guard let qs = dnnl_primitive_desc_query_md(probe, dnnl_query_src_md, 0),
              let qw = dnnl_primitive_desc_query_md(probe, dnnl_query_weights_md, 0),
              let qd = dnnl_primitive_desc_query_md(probe, dnnl_query_dst_md, 0) else { return nil }
        let blockedSrc = qs.pointee, blockedWei = qw.pointee, blockedDst = qd.pointee
        var args: [(Int32, dnnl_memory_desc_t)] = [(DNNL_ARG_SRC, blockedSrc), (DNNL_ARG_WEIGHTS, blockedWei), (DNNL_ARG_DST, blockedDst)]
        if bias { args.append((DNNL_ARG_BIAS, b)) }
        guard let conv = withUnsafePointer(to: &desc, { DNNLPrimitive(descriptor: UnsafeRawPointer($0), arguments: args) }),
              let rin = DNNLPrimitive(reorderFrom: userSrc, to: blockedSrc),
              let rw = DNNLPrimitive(reorderFrom: userWei, to: blockedWei),
              let rout = DNNLPrimitive(reorderFrom: blockedDst, to: userDst, sum: accumulate) else { return nil }
        // oneDNN's reference bf16 convolution (where its jit kernels refuse a shape) is far slower than widening
        // the weight for our float32 kernels: refused, the caller widens.
        if kind == .directBF16 && conv.implementation.contains("ref") { return nil }
        convolution = conv
        inputReorder = rin
        weightReorder = rw
        outputReorder = rout
        func rounded(_ n: Int) -> Int { (n + 63) / 64 * 64 }
        var s = blockedSrc, w = blockedWei, d = blockedDst
        blockedWeight = blockedWei
        inputOffset = rounded(dnnl_memory_desc_get_size(&w))
        outputOffset = inputOffset + rounded(dnnl_memory_desc_get_size(&s))
        scratchpadOffset = outputOffset + rounded(dnnl_memory_desc_get_size(&d))
        let pads = [conv, rin, rw, rout].map { rounded($0.scratchpadSize) }.max() ?? 0
        scratchBytes = scratchpadOffset + pads
    }
}

extension DNNLConv2d {
    /// Whether `other`'s blocked weight is laid out like this one's (then its reorder can be reused).
    func sharesWeightLayout(with other: DNNLConv2d) -> Bool {
        var a = blockedWeight, b = other.blockedWeight
        return dnnl_memory_desc_equal(&a, &b) != 0
    }
}

private let dnnlConvolutions = DNNLCache<DNNLConvKey, DNNLConv2d>()

/// The oneDNN convolution for this geometry, made once; nil where oneDNN has no such kernel here. `inputRows`
/// and `outputRows` are the caller's whole planes' rows when `g` is a strip of them (default: `g`'s own).
func dnnlConv2d(_ g: Conv2dGeometry, kind: DNNLConvolution, bias: Bool, accumulate: Bool,
                inputRows: Int? = nil, outputRows: Int? = nil) -> DNNLConv2d? {
    let key = DNNLConvKey(geometry: g, kind: kind, bias: bias, accumulate: accumulate,
                          inputRows: inputRows ?? g.height, outputRows: outputRows ?? g.outHeight)
    return dnnlConvolutions.entry(key) {
        DNNLConv2d(g, kind: kind, bias: bias, accumulate: accumulate, inputRows: key.inputRows, outputRows: key.outputRows)
    }
}

/// Output rows `firstOutputRow ..< firstOutputRow + geometry.outHeight` of a convolution, computed from input rows
/// `firstInputRow ..< firstInputRow + geometry.height` (see the file comment).
public struct DNNLStrip: Hashable, Sendable {
    public let firstOutputRow: Int
    public let firstInputRow: Int
    public let geometry: Conv2dGeometry
}

/// `DARKROOM_DNNL_SCRATCH_MIB` from the environment in floats, if set (read once): a fixed strip scratch limit in
/// place of `Conv2dGeometry.dnnlScratchLimit(_:)`'s, for measuring the strip size.
public let dnnlScratchOverride: Int? = {
    if let v = getenv("DARKROOM_DNNL_SCRATCH_MIB"), let mib = Int(String(cString: v)), mib > 0 { return mib << 18 }
    return nil
}()

extension Conv2dGeometry {
    /// The strips of `rows` output rows each (the last may be shorter) that cover the output; one strip (`self`)
    /// when `rows` covers it or the convolution is strided.
    func dnnlStrips(rows: Int) -> [DNNLStrip] {
        guard stride == 1, rows < outHeight, rows >= 1 else { return [DNNLStrip(firstOutputRow: 0, firstInputRow: 0, geometry: self)] }
        return Swift.stride(from: 0, to: outHeight, by: rows).map { r0 in
            let n = min(rows, outHeight - r0)
            let start = r0 - padTop, end = r0 + n - 1 - padTop + kernel        // input rows [start, end), unclipped
            let lo = max(0, start), hi = min(height, end)
            var g = self
            g.height = hi - lo
            g.padTop = lo - start
            g.padBottom = end - hi
            return DNNLStrip(firstOutputRow: r0, firstInputRow: lo, geometry: g)
        }
    }

    /// Bytes of scratch the strips of `rows` rows need (the largest strip's), 0 where oneDNN refuses one.
    func dnnlStripBytes(_ kind: DNNLConvolution, rows: Int) -> Int {
        var most = 0
        for geometry in Set(dnnlStrips(rows: rows).map(\.geometry)) {
            guard let conv = dnnlConv2d(geometry, kind: kind, bias: true, accumulate: true, inputRows: height, outputRows: outHeight),
                  let plain = dnnlConv2d(geometry, kind: kind, bias: false, accumulate: false, inputRows: height, outputRows: outHeight)
            else { return 0 }
            most = max(most, conv.scratchBytes, plain.scratchBytes)
        }
        return most
    }

    /// The most scratch floats one oneDNN convolution of this geometry may take with `kind`; larger images run in
    /// row strips within it. Scaled to the image, from one item's input and output planes together (docs/engine.md §9,
    /// strip size against CPU time): Winograd half of them, at least 128 MiB (its strips cost time below that: 64 MiB
    /// took 1.7× the CPU of 256 MiB at 128 × 512², 32 MiB 3.3×, 128 MiB 1.1×); the direct kernels an eighth, at least
    /// 32 MiB (their CPU time does not depend on the strip: bf16 at 128 × 512², 1.0× / 1.06× / 1.1× for 128 / 64 /
    /// 32 MiB); at most 256 MiB. `DARKROOM_DNNL_SCRATCH_MIB` sets one limit for all.
    public func dnnlScratchLimit(_ kind: DNNLConvolution) -> Int {
        if let fixed = dnnlScratchOverride { return fixed }
        let planes = inChannels * height * width + outChannels * outHeight * outWidth
        return kind == .winograd ? min(max(planes / 2, 1 << 25), 1 << 26) : min(max(planes / 8, 1 << 23), 1 << 26)
    }

    /// Output rows per strip for oneDNN: all of them when the whole image's scratch stays within
    /// `dnnlScratchLimit` floats, else the most (a multiple of 4, Winograd F(4×4)'s tile) whose strips' does;
    /// nil where oneDNN refuses the shape or even 4 rows would not fit.
    public func dnnlStripRows(_ kind: DNNLConvolution) -> Int? {
        let limitBytes = 4 * dnnlScratchLimit(kind)
        var rows = outHeight
        for _ in 0..<8 {
            let bytes = dnnlStripBytes(kind, rows: rows)
            if bytes == 0 { return nil }
            if bytes + 64 <= limitBytes { return rows }
            if rows <= 4 || stride != 1 { return nil }
            // scratch grows about linearly with the rows; aim a little under the limit
            let guess = Int(Double(rows) * Double(limitBytes) / Double(bytes) * 0.95) / 4 * 4
            rows = max(4, min(rows - 4, guess))
        }
        return nil
    }

    /// Scratch floats `conv2dDNNL` needs for this geometry and kernel (0 where oneDNN has no such kernel): one
    /// strip's (`dnnlStripRows`).
    public func dnnlScratchCount(_ kind: DNNLConvolution) -> Int {
        guard let rows = dnnlStripRows(kind) else { return 0 }
        return (dnnlStripBytes(kind, rows: rows) + 3) / 4 + 16  // + 16: room to align to 64 bytes
    }
}

/// 2-D convolution through oneDNN (see the file comment); same contract as `conv2d`, one batch item per call so
/// an item's result does not depend on its batch-mates. Large images go in row strips (`dnnlStripRows`); the
/// strips depend only on the geometry. Returns false (having written nothing) when oneDNN cannot serve it or the
/// scratch is too small; the caller then takes its own kernel. `kind` is `.winograd` or `.direct` (float32 weight).
// x: [B, C, H, W], w: [O, C, k, k], b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ geometry.dnnlScratchCount(kind) floats
public func conv2dDNNL(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool = false, kind: DNNLConvolution, threads: Int
) -> Bool {
    precondition(kind != .directBF16, "conv2dDNNL: a float32 weight for the bf16 kernel")
    guard let rows = g.dnnlStripRows(kind) else { return false }
    return conv2dDNNL(y, x, UnsafeRawPointer(w), b, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                      accumulate: accumulate, kind: kind, threads: threads, stripRows: rows)
}

/// The same over a bf16 weight with oneDNN's bf16 direct kernel (`DNNLConvolution.directBF16`): the input rounded to
/// bf16, float32 accumulation and output. False where the CPU has no bf16 dot products or oneDNN no kernel for it.
// x: [B, C, H, W], w: [O, C, k, k] (bf16 bits), b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ dnnlScratchCount(.directBF16)
public func conv2dDNNL(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, bf16 w: UnsafePointer<UInt16>, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool = false, threads: Int
) -> Bool {
    guard DNNL.hasBF16DotProducts, let rows = g.bf16StripRows else { return false }
    return conv2dDNNL(y, x, UnsafeRawPointer(w), b, batch: batch, geometry: g, scratch: scratch, scratchCount: scratchCount,
                      accumulate: accumulate, kind: .directBF16, threads: threads, stripRows: rows)
}

/// `conv2dDNNL` in strips of `stripRows` output rows (tests choose them; the scratch must hold the largest strip).
/// `w` holds float32 values, or bf16 bits for `.directBF16`.
func conv2dDNNL(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool, kind: DNNLConvolution, threads: Int, stripRows: Int
) -> Bool {
    guard var runner = DNNLStripConvolution(geometry: g, kind: kind, bias: b != nil, accumulate: accumulate, stripRows: stripRows,
                                            scratch: scratch, scratchCount: scratchCount) else { return false }
    let inCount = g.inChannels * g.height * g.width, outCount = g.outChannels * g.outHeight * g.outWidth
    for item in 0..<batch {
        for (i, strip) in runner.strips.enumerated() {
            guard runner.run(i, y: y + item * outCount + strip.firstOutputRow * g.outWidth,
                             x: x + item * inCount + strip.firstInputRow * g.width, w: w, b: b, threads: threads) else { return false }
        }
    }
    return true
}

/// One oneDNN convolution run a strip of output rows at a time, for callers that make its input or use its output
/// strip by strip instead of holding whole feature maps (the decoders' up and residual blocks): strip `i` reads
/// input rows `strips[i].firstInputRow ..< + strips[i].geometry.height` and writes output rows
/// `strips[i].firstOutputRow ..< + strips[i].geometry.outHeight`. The caller's planes hold either the whole image's
/// rows (`wholeInput` / `wholeOutput`) or only the strip's (a buffer of one strip, its planes strip-high). The
/// strips and their results are `conv2dDNNL`'s, bit for bit; the weight is reordered into the scratch once and kept
/// while the strips' blocked layouts agree, so the scratch must not be touched between the strips of one run.
public struct DNNLStripConvolution {
    public let strips: [DNNLStrip]
    private let convs: [DNNLConv2d]
    private let base: UnsafeMutableRawPointer
    private var reordered: DNNLConv2d? = nil      // whose weight layout the scratch holds
    private var written = false

    /// nil when oneDNN cannot serve a strip here or the scratch (≥ `geometry.dnnlScratchCount(kind)` floats for
    /// the default strips: `conv2d`'s, `bf16StripRows` for `.directBF16`) is too small; nothing is written then.
    public init?(geometry g: Conv2dGeometry, kind: DNNLConvolution, bias: Bool, accumulate: Bool, stripRows: Int? = nil,
                 wholeInput: Bool = true, wholeOutput: Bool = true, scratch: UnsafeMutablePointer<Float>, scratchCount: Int) {
        guard let rows = stripRows ?? (kind == .directBF16 ? g.bf16StripRows : g.dnnlStripRows(kind)) else { return nil }
        let strips = g.dnnlStrips(rows: rows)
        var convs: [DNNLConv2d] = []
        for strip in strips {
            let s = strip.geometry
            guard let conv = dnnlConv2d(s, kind: kind, bias: bias, accumulate: accumulate, inputRows: wholeInput ? g.height : s.height,
                                        outputRows: wholeOutput ? g.outHeight : s.outHeight) else { return nil }
            convs.append(conv)
        }
        // align the scratch to 64 bytes
        let raw = UnsafeMutableRawPointer(scratch)
        let skip = (64 - Int(bitPattern: raw) % 64) % 64
        guard convs.allSatisfy({ skip + $0.scratchBytes <= 4 * scratchCount }) else { return nil }
        self.strips = strips
        self.convs = convs
        base = raw + skip
    }

    /// Runs strip `i`: `x` points at its first input row (channel 0) and `y` at its first output row, in planes as
    /// `init` was told. Returns false only when oneDNN fails before this convolution wrote anything (the caller then
    /// takes another path).
    // x: [C, rows, W] strip of the input planes, w: [O, C, k, k] (float32, or bf16 bits for `.directBF16`), b: [O]?
    //   -> y: [O, rows, Wo] strip of the output planes
    public mutating func run(_ i: Int, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, w: UnsafeRawPointer,
                             b: UnsafePointer<Float>?, threads: Int) -> Bool {
        let conv = convs[i]
        let src = base + conv.inputOffset, wei = base, dst = base + conv.outputOffset, pad = base + conv.scratchpadOffset
        if !(reordered.map { conv.sharesWeightLayout(with: $0) } ?? false) {
            guard conv.weightReorder.run([UnsafeMutableRawPointer(mutating: w), wei], scratchpad: pad, threads: threads) else {
                if !written { return false }
                preconditionFailure("conv2dDNNL: oneDNN failed to reorder a weight it reordered before")
            }
            reordered = conv
        }
        var args: [UnsafeMutableRawPointer?] = [src, wei, dst]
        if let b { args.append(UnsafeMutableRawPointer(mutating: b)) }
        guard conv.inputReorder.run([UnsafeMutableRawPointer(mutating: x), src], scratchpad: pad, threads: threads),
              conv.convolution.run(args, scratchpad: pad, threads: threads),
              conv.outputReorder.run([dst, UnsafeMutableRawPointer(y)], scratchpad: pad, threads: threads) else {
            if !written { return false }
            // oneDNN failed after earlier rows were written (it accepted the shape and ran it before).
            preconditionFailure("conv2dDNNL: oneDNN failed on strip \(i) of a convolution it accepted")
        }
        written = true
        return true
    }
}
