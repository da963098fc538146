// 3×3 convolutions through oneDNN (Debian's libdnnl 2.6): its Winograd F(4×4, 3×3) kernel (`jit_wino_4x3`,
// avx512_core, float32) or its direct kernel (`brgconv`/`jit`, float32), one batch item per call. oneDNN's fast
// kernels want channel-blocked layouts (`nChw16c`) and their own weight layout, so each call reorders the input
// and the weight into the caller's scratch, runs the convolution, and reorders the result back to NCHW (adding
// into `y` when accumulating). Everything lives in the caller's scratch (`Conv2dGeometry.dnnlScratchCount`).
import CDNNL

/// The oneDNN convolution kernels `conv2d` can use.
public enum DNNLConvolution: Sendable, Hashable {
    case winograd, direct
}

private struct DNNLConvKey: Hashable, Sendable {
    let geometry: Conv2dGeometry
    let kind: DNNLConvolution
    let bias: Bool
    let accumulate: Bool
}

/// The four primitives of one oneDNN convolution and where their buffers sit in the caller's scratch.
final class DNNLConv2d: @unchecked Sendable {
    let convolution: DNNLPrimitive
    let inputReorder: DNNLPrimitive
    let weightReorder: DNNLPrimitive
    let outputReorder: DNNLPrimitive
    /// Byte offsets into the scratch: blocked input, blocked weight, blocked output, then the scratchpads.
    let weightOffset: Int, outputOffset: Int, scratchpadOffset: Int
    /// Total bytes of scratch one call needs.
    let scratchBytes: Int

    init?(_ g: Conv2dGeometry, kind: DNNLConvolution, bias: Bool, accumulate: Bool) {
        guard g.stride >= 1, g.kernel >= 1 else { return nil }
        let c = g.inChannels, o = g.outChannels
        guard let userSrc = dnnlDesc([1, c, g.height, g.width], dnnl_f32, dnnl_nchw),
              let userWei = dnnlDesc([o, c, g.kernel, g.kernel], dnnl_f32, dnnl_oihw),
              let userDst = dnnlDesc([1, o, g.outHeight, g.outWidth], dnnl_f32, dnnl_nchw),
              var src = dnnlDesc([1, c, g.height, g.width], dnnl_f32, dnnl_format_tag_any),
              var wei = dnnlDesc([o, c, g.kernel, g.kernel], dnnl_f32, dnnl_format_tag_any),
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
        convolution = conv
        inputReorder = rin
        weightReorder = rw
        outputReorder = rout
        func rounded(_ n: Int) -> Int { (n + 63) / 64 * 64 }
        var s = blockedSrc, w = blockedWei, d = blockedDst
        weightOffset = rounded(dnnl_memory_desc_get_size(&s))
        outputOffset = weightOffset + rounded(dnnl_memory_desc_get_size(&w))
        scratchpadOffset = outputOffset + rounded(dnnl_memory_desc_get_size(&d))
        let pads = [conv, rin, rw, rout].map { rounded($0.scratchpadSize) }.max() ?? 0
        scratchBytes = scratchpadOffset + pads
    }
}

private let dnnlConvolutions = DNNLCache<DNNLConvKey, DNNLConv2d>()

/// The oneDNN convolution for this geometry, made once; nil where oneDNN has no such kernel here.
func dnnlConv2d(_ g: Conv2dGeometry, kind: DNNLConvolution, bias: Bool, accumulate: Bool) -> DNNLConv2d? {
    let key = DNNLConvKey(geometry: g, kind: kind, bias: bias, accumulate: accumulate)
    return dnnlConvolutions.entry(key) { DNNLConv2d(g, kind: kind, bias: bias, accumulate: accumulate) }
}

extension Conv2dGeometry {
    /// Scratch floats `conv2dDNNL` needs for this geometry and kernel (0 where oneDNN has no such kernel).
    public func dnnlScratchCount(_ kind: DNNLConvolution) -> Int {
        guard let conv = dnnlConv2d(self, kind: kind, bias: true, accumulate: true),
              let plain = dnnlConv2d(self, kind: kind, bias: false, accumulate: false) else { return 0 }
        return (max(conv.scratchBytes, plain.scratchBytes) + 3) / 4 + 16  // + 16: room to align to 64 bytes
    }
}

/// 2-D convolution through oneDNN (see the file comment); same contract as `conv2d`, one batch item per call so
/// an item's result does not depend on its batch-mates. Returns false (having written nothing) when oneDNN
/// cannot serve it or the scratch is too small; the caller then takes its own kernel.
// x: [B, C, H, W], w: [O, C, k, k], b: [O]? -> y: [B, O, Ho, Wo];  scratch: ≥ geometry.dnnlScratchCount(kind) floats
public func conv2dDNNL(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    batch: Int, geometry g: Conv2dGeometry, scratch: UnsafeMutablePointer<Float>, scratchCount: Int,
    accumulate: Bool = false, kind: DNNLConvolution, threads: Int
) -> Bool {
    guard let conv = dnnlConv2d(g, kind: kind, bias: b != nil, accumulate: accumulate) else { return false }
    // align the scratch to 64 bytes
    let raw = UnsafeMutableRawPointer(scratch)
    let skip = (64 - Int(bitPattern: raw) % 64) % 64
    guard skip + conv.scratchBytes <= 4 * scratchCount else { return false }
    let base = raw + skip
    let src = base, wei = base + conv.weightOffset, dst = base + conv.outputOffset, pad = base + conv.scratchpadOffset
    guard conv.weightReorder.run([UnsafeMutableRawPointer(mutating: w), wei], scratchpad: pad, threads: threads) else { return false }
    let inCount = g.inChannels * g.height * g.width, outCount = g.outChannels * g.outHeight * g.outWidth
    for item in 0..<batch {
        let xi = UnsafeMutableRawPointer(mutating: x + item * inCount), yi = UnsafeMutableRawPointer(y + item * outCount)
        var args: [UnsafeMutableRawPointer?] = [src, wei, dst]
        if let b { args.append(UnsafeMutableRawPointer(mutating: b)) }
        guard conv.inputReorder.run([xi, src], scratchpad: pad, threads: threads),
              conv.convolution.run(args, scratchpad: pad, threads: threads),
              conv.outputReorder.run([dst, yi], scratchpad: pad, threads: threads) else {
            if item == 0 { return false }
            // oneDNN failed after earlier items were written (it accepted the shape and ran it before).
            preconditionFailure("conv2dDNNL: oneDNN failed on item \(item) of a convolution it accepted")
        }
    }
    return true
}
