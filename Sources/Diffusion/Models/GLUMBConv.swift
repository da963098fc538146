import Tensor
import Weights

/// GLUMBConv, the Mix-FFN of Sana blocks and DC-AE's EfficientViT blocks (sana_transformer.py:38-82):
/// 1×1 conv C → 2H (bias), SiLU, depthwise 3×3 (bias), `hidden · SiLU(gate)` over the two channel halves,
/// 1×1 conv H → Cout (no bias), then, with `norm_type="rms_norm"` (DC-AE), RMSNorm across channels
/// (eps 1e-5, weight and bias). The residual (DC-AE) is added by the caller. H = int(expand_ratio · C).
struct GLUMBConv: Sendable {
    let convInverted: PointwiseConvLayer   // conv_inverted [2H, C, 1, 1]
    let convDepth: DepthwiseConv2dLayer   // conv_depth [2H, 1, 3, 3], groups 2H
    let convPoint: PointwiseConvLayer      // conv_point [Cout, H, 1, 1], no bias
    let norm: (weight: WeightView, bias: WeightView)?   // norm [Cout]
    let hidden: Int
    let depthTaps: [Float]                 // conv_depth reordered tap-major [9, 2H] for the channels-last path

    init(_ store: WeightStore, _ prefix: String, in c: Int, out: Int, expandRatio: Double, rmsNorm: Bool) throws {
        hidden = Int(expandRatio * Double(c))
        convInverted = try PointwiseConvLayer(store, prefix + ".conv_inverted", in: c, out: 2 * hidden)
        convDepth = try DepthwiseConv2dLayer(store, prefix + ".conv_depth", channels: 2 * hidden, kernel: 3)
        convPoint = try PointwiseConvLayer(store, prefix + ".conv_point", in: hidden, out: out, bias: false)
        let depth = convDepth.weight.pointer, channels = 2 * hidden
        depthTaps = [Float](unsafeUninitializedCapacity: 9 * channels) { taps, count in
            depthwiseTapsChannelsLast(taps.baseAddress!, depth, channels: channels)
            count = 9 * channels
        }
        norm = rmsNorm
            ? (try loadWeight(store, prefix + ".norm.weight", shape: [out]), try loadWeight(store, prefix + ".norm.bias", shape: [out]))
            : nil
    }

    /// Floats of `scratch` a call needs.
    func scratchCount(batch: Int, spatial: Int) -> Int { 2 * batch * 2 * hidden * spatial }

    // x: [B, C, H, W] -> y: [B, Cout, H, W];  scratch: scratchCount floats
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int,
                        scratch: UnsafeMutablePointer<Float>) {
        let s = height * width, h2 = 2 * hidden
        let wide = scratch, depth = scratch + batch * h2 * s
        // conv_inverted + SiLU                                      [B, 2H, S]
        convInverted(wide, x, batch: batch, spatial: s)
        silu(wide, wide, count: batch * h2 * s)
        // conv_depth, depthwise 3×3                                 [B, 2H, S]
        depthwiseConv2d(depth, wide, convDepth.weight.pointer, convDepth.bias?.pointer,
                        batch: batch, channels: h2, height: height, width: width, kernel: 3)
        // hidden · SiLU(gate)                                        [B, H, S]
        gluSiLU(wide, depth, batch: batch, channels: hidden, spatial: s)
        // conv_point                                                 [B, Cout, S]
        convPoint(y, wide, batch: batch, spatial: s)
        if let norm {
            rmsNormChannels(y, y, weight: norm.weight.pointer, bias: norm.bias.pointer, batch: batch,
                            channels: convPoint.outChannels, spatial: s, eps: 1e-5)
        }
    }

    /// Floats of `scratch` a `tokens` call needs.
    func tokensScratchCount(batch: Int, spatial: Int) -> Int { 3 * batch * hidden * spatial }

    /// The same function on token rows, channels last: x as `[B, h·w, C]` — Sana's block reshapes its tokens to
    /// `[B, C, h, w]` for the ff and back (sana_transformer.py:281-284); here the 1×1 convolutions are the linear
    /// layers they are on those rows (one sgemm per item, or the bf16 dot products for a bf16 weight), the depthwise
    /// 3×3 and the GLU run fused across channels, and no transposes are needed. Without the DC-AE norm only.
    // x: [B, h·w, C] -> y: [B, h·w, Cout];  scratch: tokensScratchCount floats
    func tokens(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int,
                scratch: UnsafeMutablePointer<Float>) {
        precondition(norm == nil, "GLUMBConv.tokens: the RMSNorm variant (DC-AE) runs channel-major")
        let s = height * width, rows = batch * s
        let wide = scratch, glu = scratch + rows * 2 * hidden
        // conv_inverted + SiLU                                      [B, S, 2H]
        LinearLayer(pointwise: convInverted)(wide, x, rows: rows, items: batch, epilogue: .silu)
        // conv_depth, depthwise 3×3, then hidden · SiLU(gate)        [B, S, H]
        depthTaps.withUnsafeBufferPointer { taps in
            depthwise3x3GLUChannelsLast(glu, wide, taps: taps.baseAddress!, bias: convDepth.bias!.pointer,
                                        batch: batch, height: height, width: width, channels: hidden)
        }
        // conv_point                                                 [B, S, Cout]
        LinearLayer(pointwise: convPoint)(y, glu, rows: rows, items: batch)
    }
}
