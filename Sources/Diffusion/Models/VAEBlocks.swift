import Core
import Tensor
import Weights

// Building blocks of AutoencoderKL (docs/engine.md §3.1): ResnetBlock2D, the mid-block attention,
// Upsample2D / Downsample2D, and the encoder and decoder stacks (vae.py:62-314).

/// Feature maps `[B, C, H, W]` of one forward pass.
final class FeatureMap {
    let buffer: FloatBuffer
    let batch: Int, channels: Int, height: Int, width: Int

    init(batch: Int, channels: Int, height: Int, width: Int) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        buffer = FloatBuffer(count: batch * channels * height * width)
    }

    /// A copy of a `[B, C, H, W]` tensor.
    convenience init(_ t: Tensor) {
        self.init(batch: t.shape[0], channels: t.shape[1], height: t.shape[2], width: t.shape[3])
        t.data.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: t.count) }
    }

    var pointer: UnsafeMutablePointer<Float> { buffer.pointer }
    var spatial: Int { height * width }
    var count: Int { batch * channels * height * width }
    /// The map as a `[B, C, H, W]` tensor (a copy).
    var tensor: Tensor { buffer.tensor(shape: [batch, channels, height, width]) }
}

/// Convolution scratch shared by the convolutions of one forward; grows to the largest need (capped per conv).
final class ConvScratch {
    private var buffer = FloatBuffer(count: 0)

    private func reserve(_ need: Int) {
        if buffer.count < need { buffer = FloatBuffer(count: need) }
    }

    func run(_ conv: Conv2dLayer, _ y: FeatureMap, _ x: FeatureMap, geometry g: Conv2dGeometry, accumulate: Bool = false) {
        reserve(conv.scratchCount(g))
        conv(y.pointer, x.pointer, batch: x.batch, geometry: g, scratch: buffer.pointer, scratchCount: buffer.count,
             accumulate: accumulate)
    }

    /// Same-size convolution (stride 1, padding k/2) into a new map.
    func same(_ conv: Conv2dLayer, _ x: FeatureMap) -> FeatureMap {
        let y = FeatureMap(batch: x.batch, channels: conv.outChannels, height: x.height, width: x.width)
        run(conv, y, x, geometry: conv.same(height: x.height, width: x.width))
        return y
    }

    /// Same-size convolution of `x` handed to `body` a strip of output rows at a time: `body(item, firstRow, rows,
    /// out)` with `out` = rows `firstRow ..< firstRow + rows` of one item's output, `[O, rows, W]`. Where `conv2d`
    /// runs the convolution through oneDNN in row strips (DNNLConv2d.swift) only one strip of the output exists at
    /// a time; elsewhere the whole output, handed over an item at a time. The values are `same(conv, x)`'s, bit for bit.
    func same(_ conv: Conv2dLayer, _ x: FeatureMap,
              strips body: (_ item: Int, _ firstRow: Int, _ rows: Int, _ out: UnsafeMutablePointer<Float>) -> Void) {
        let g = conv.same(height: x.height, width: x.width)
        if case let (kind, w)? = conv.dnnlKernel(g) {
            reserve(conv.scratchCount(g))
            if var plan = DNNLStripConvolution(geometry: g, kind: kind, bias: conv.bias != nil, accumulate: false, wholeOutput: false,
                                               scratch: buffer.pointer, scratchCount: buffer.count) {
                let out = FloatBuffer(count: g.outChannels * (plan.strips.map(\.geometry.outHeight).max() ?? 0) * g.outWidth)
                let inCount = x.channels * x.spatial
                var ran = true
                items: for item in 0..<x.batch {
                    for (i, strip) in plan.strips.enumerated() {
                        // false only before anything was written: then the whole-output path below
                        guard plan.run(i, y: out.pointer, x: x.pointer + item * inCount + strip.firstInputRow * g.width,
                                         w: w, b: conv.bias?.pointer, threads: blasThreadCount) else { ran = false; break items }
                        body(item, strip.firstOutputRow, strip.geometry.outHeight, out.pointer)
                    }
                }
                if ran { return }
            }
        }
        let y = same(conv, x)
        for item in 0..<x.batch { body(item, 0, y.height, y.pointer + item * y.channels * y.spatial) }
    }

    /// Same-size convolution of `upsampleNearest2x(x)` into a new map. Where oneDNN runs it in row strips, each
    /// strip's input rows are upsampled into a buffer of one strip, so the upsampled map (4× x) never exists whole;
    /// elsewhere it is made whole first. The values are `same(conv, upsampled x)`'s, bit for bit.
    // x: [B, C, H, W] -> [B, O, 2H, 2W]
    func upsampledSame(_ conv: Conv2dLayer, _ x: FeatureMap) -> FeatureMap {
        let g = conv.same(height: 2 * x.height, width: 2 * x.width)
        if case let (kind, w)? = conv.dnnlKernel(g) {
            reserve(conv.scratchCount(g))
            if var plan = DNNLStripConvolution(geometry: g, kind: kind, bias: conv.bias != nil, accumulate: false, wholeInput: false,
                                               scratch: buffer.pointer, scratchCount: buffer.count) {
                let input = FloatBuffer(count: x.channels * (plan.strips.map(\.geometry.height).max() ?? 0) * g.width)
                let y = FeatureMap(batch: x.batch, channels: conv.outChannels, height: g.outHeight, width: g.outWidth)
                var ran = true
                items: for item in 0..<x.batch {
                    for (i, strip) in plan.strips.enumerated() {
                        upsampleNearest2x(input.pointer, x.pointer + item * x.channels * x.spatial, planes: x.channels, height: x.height,
                                          width: x.width, firstRow: strip.firstInputRow, rows: strip.geometry.height)
                        // false only before anything was written: then the whole-map path below
                        guard plan.run(i, y: y.pointer + item * y.channels * y.spatial + strip.firstOutputRow * g.outWidth,
                                         x: input.pointer, w: w, b: conv.bias?.pointer,
                                         threads: blasThreadCount) else { ran = false; break items }
                    }
                }
                if ran { return y }
            }
        }
        let big = FeatureMap(batch: x.batch, channels: x.channels, height: 2 * x.height, width: 2 * x.width)
        upsampleNearest2x(big.pointer, x.pointer, planes: x.batch * x.channels, height: x.height, width: x.width)
        return same(conv, big)
    }
}

/// ResnetBlock2D without time embedding (resnet.py:188-377), eps 1e-6:
/// `y = shortcut(x) + conv2(SiLU(GN2(conv1(SiLU(GN1(x))))))`, shortcut = 1×1 conv when in ≠ out.
struct ResnetBlock: Sendable {
    let norm1: GroupNormLayer, conv1: Conv2dLayer
    let norm2: GroupNormLayer, conv2: Conv2dLayer
    let shortcut: Conv2dLayer?

    init(_ store: WeightStore, _ prefix: String, in cin: Int, out cout: Int, groups: Int) throws {
        norm1 = try GroupNormLayer(store, prefix + ".norm1", channels: cin, groups: groups, eps: 1e-6)
        conv1 = try Conv2dLayer(store, prefix + ".conv1", in: cin, out: cout, kernel: 3)
        norm2 = try GroupNormLayer(store, prefix + ".norm2", channels: cout, groups: groups, eps: 1e-6)
        conv2 = try Conv2dLayer(store, prefix + ".conv2", in: cout, out: cout, kernel: 3)
        shortcut = cin != cout ? try Conv2dLayer(store, prefix + ".conv_shortcut", in: cin, out: cout, kernel: 1) : nil
    }

    // x: [B, Cin, H, W] -> [B, Cout, H, W]  (x itself is reused as the output when Cin == Cout)
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        let h: FeatureMap
        do {   // t lives only for conv1
            let t = FeatureMap(batch: x.batch, channels: x.channels, height: x.height, width: x.width)
            norm1(t.pointer, x.pointer, batch: x.batch, spatial: x.spatial, silu: true)
            h = scratch.same(conv1, t)
        }
        norm2(h.pointer, h.pointer, batch: h.batch, spatial: h.spatial, silu: true)
        let y = shortcut.map { scratch.same($0, x) } ?? x
        scratch.run(conv2, y, h, geometry: conv2.same(height: h.height, width: h.width), accumulate: true)
        return y
    }
}

/// Mid-block attention (unet_2d_blocks.py:681-697, AttnProcessor2_0 on 4-D input): one head of width C,
/// `y = to_out(softmax(q·kᵀ/√C)·v) + x` with q, k, v from GN(x) as tokens `[B, H·W, C]`.
/// Accepts the legacy names query/key/value/proj_attn and `[C, C, 1, 1]` weights (docs/engine.md §3.3).
struct VAEAttention: Sendable {
    let groupNorm: GroupNormLayer
    let toQ, toK, toV, toOut: LinearLayer
    let channels: Int

    init(_ store: WeightStore, _ prefix: String, channels c: Int, groups: Int) throws {
        channels = c
        groupNorm = try GroupNormLayer(store, prefix + ".group_norm", channels: c, groups: groups, eps: 1e-6)
        func proj(_ name: String, _ legacy: String) throws -> LinearLayer {
            try LinearLayer(store, prefix + "." + name, in: c, out: c, acceptConvShape: true, legacyPrefixes: [prefix + "." + legacy])
        }
        toQ = try proj("to_q", "query")
        toK = try proj("to_k", "key")
        toV = try proj("to_v", "value")
        toOut = try proj("to_out.0", "proj_attn")
    }

    // x: [B, C, H, W] -> x + attention  (in place)
    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        let b = x.batch, c = channels, s = x.spatial, rows = b * s
        let normed = FeatureMap(batch: b, channels: c, height: x.height, width: x.width)
        groupNorm(normed.pointer, x.pointer, batch: b, spatial: s, silu: false)
        let tokens = FloatBuffer(count: rows * c)
        transpose(tokens.pointer, normed.pointer, batch: b, rows: c, columns: s)        // [B, S, C]
        let q = FloatBuffer(count: rows * c), k = FloatBuffer(count: rows * c), v = FloatBuffer(count: rows * c)
        toQ(q.pointer, tokens.pointer, rows: rows)
        toK(k.pointer, tokens.pointer, rows: rows)
        toV(v.pointer, tokens.pointer, rows: rows)
        let scoresCount = min(s * s, max(s, 1 << 24))
        let scores = FloatBuffer(count: scoresCount)
        attention(tokens.pointer, ldo: c, q: q.pointer, ldq: c, k: k.pointer, ldk: c, v: v.pointer, ldv: c,
                  batch: b, queryTokens: s, keyTokens: s, heads: 1, headDim: c,
                  scratch: scores.pointer, scratchCount: scoresCount)
        toOut(q.pointer, tokens.pointer, rows: rows)                                     // [B, S, C]
        transpose(normed.pointer, q.pointer, batch: b, rows: s, columns: c)            // [B, C, S]
        add(x.pointer, normed.pointer, x.pointer, count: x.count)                       // (o + r) / 1.0
        return x
    }
}

/// UNetMidBlock2D with one layer (unet_2d_blocks.py:736-748): resnet, attention (if enabled), resnet.
struct VAEMidBlock: Sendable {
    let resnet0: ResnetBlock
    let attention: VAEAttention?
    let resnet1: ResnetBlock

    init(_ store: WeightStore, _ prefix: String, channels c: Int, groups: Int, withAttention: Bool) throws {
        resnet0 = try ResnetBlock(store, prefix + ".resnets.0", in: c, out: c, groups: groups)
        attention = withAttention ? try VAEAttention(store, prefix + ".attentions.0", channels: c, groups: groups) : nil
        resnet1 = try ResnetBlock(store, prefix + ".resnets.1", in: c, out: c, groups: groups)
    }

    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        var h = resnet0(x, scratch)
        if let attention { h = attention(h) }
        return resnet1(h, scratch)
    }
}

/// Decoder (vae.py:183-314): conv_in, mid block, UpDecoderBlock2D × n (Lp + 1 resnets, nearest ×2 + conv
/// upsampler except the last), GN + SiLU, conv_out.
struct VAEDecoderStack: Sendable {
    struct UpBlock: Sendable {
        let resnets: [ResnetBlock]
        let upsampler: Conv2dLayer?
    }

    let convIn: Conv2dLayer
    let mid: VAEMidBlock
    let upBlocks: [UpBlock]
    let normOut: GroupNormLayer
    let convOut: Conv2dLayer

    init(_ store: WeightStore, config: AutoencoderKL.Config) throws {
        let ch = config.blockOutChannels, g = config.normNumGroups, lp = config.layersPerBlock
        convIn = try Conv2dLayer(store, "decoder.conv_in", in: config.latentChannels, out: ch.last!, kernel: 3)
        mid = try VAEMidBlock(store, "decoder.mid_block", channels: ch.last!, groups: g, withAttention: config.midBlockAddAttention)
        var blocks: [UpBlock] = []
        var prev = ch.last!
        for (i, out) in ch.reversed().enumerated() {
            let prefix = "decoder.up_blocks.\(i)"
            let resnets = try (0...lp).map { r in
                try ResnetBlock(store, prefix + ".resnets.\(r)", in: r == 0 ? prev : out, out: out, groups: g)
            }
            let up = i != ch.count - 1 ? try Conv2dLayer(store, prefix + ".upsamplers.0.conv", in: out, out: out, kernel: 3) : nil
            blocks.append(UpBlock(resnets: resnets, upsampler: up))
            prev = out
        }
        upBlocks = blocks
        normOut = try GroupNormLayer(store, "decoder.conv_norm_out", channels: ch[0], groups: g, eps: 1e-6)
        convOut = try Conv2dLayer(store, "decoder.conv_out", in: ch[0], out: config.outChannels, kernel: 3)
    }

    // z: [B, lat, h, w] -> [B, out, h·2^(n−1), w·2^(n−1)]
    func callAsFunction(_ z: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        var h = scratch.same(convIn, z)
        h = mid(h, scratch)
        for block in upBlocks {
            for resnet in block.resnets { h = resnet(h, scratch) }
            if let up = block.upsampler { h = scratch.upsampledSame(up, h) }   // nearest ×2, conv
            MemoryTrace.mark("vae decode: up block → \(h.channels)×\(h.height)×\(h.width)")
        }
        normOut(h.pointer, h.pointer, batch: h.batch, spatial: h.spatial, silu: true)
        return scratch.same(convOut, h)
    }
}

/// Encoder (vae.py:62-180): conv_in, DownEncoderBlock2D × n (Lp resnets, then F.pad (0,1,0,1) + 3×3
/// stride-2 conv except the last), mid block, GN + SiLU, conv_out to 2·latent channels (double_z).
struct VAEEncoderStack: Sendable {
    struct DownBlock: Sendable {
        let resnets: [ResnetBlock]
        let downsampler: Conv2dLayer?
    }

    let convIn: Conv2dLayer
    let downBlocks: [DownBlock]
    let mid: VAEMidBlock
    let normOut: GroupNormLayer
    let convOut: Conv2dLayer

    init(_ store: WeightStore, config: AutoencoderKL.Config) throws {
        let ch = config.blockOutChannels, g = config.normNumGroups, lp = config.layersPerBlock
        convIn = try Conv2dLayer(store, "encoder.conv_in", in: config.inChannels, out: ch[0], kernel: 3)
        var blocks: [DownBlock] = []
        var prev = ch[0]
        for (i, out) in ch.enumerated() {
            let prefix = "encoder.down_blocks.\(i)"
            let resnets = try (0..<lp).map { r in
                try ResnetBlock(store, prefix + ".resnets.\(r)", in: r == 0 ? prev : out, out: out, groups: g)
            }
            let down = i != ch.count - 1 ? try Conv2dLayer(store, prefix + ".downsamplers.0.conv", in: out, out: out, kernel: 3) : nil
            blocks.append(DownBlock(resnets: resnets, downsampler: down))
            prev = out
        }
        downBlocks = blocks
        mid = try VAEMidBlock(store, "encoder.mid_block", channels: ch.last!, groups: g, withAttention: config.midBlockAddAttention)
        normOut = try GroupNormLayer(store, "encoder.conv_norm_out", channels: ch.last!, groups: g, eps: 1e-6)
        convOut = try Conv2dLayer(store, "encoder.conv_out", in: ch.last!, out: 2 * config.latentChannels, kernel: 3)
    }

    // x: [B, in, H, W] -> [B, 2·lat, H/2^(n−1), W/2^(n−1)]
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        var h = scratch.same(convIn, x)
        for block in downBlocks {
            for resnet in block.resnets { h = resnet(h, scratch) }
            if let down = block.downsampler {
                let g = Conv2dGeometry(inChannels: h.channels, outChannels: down.outChannels, height: h.height, width: h.width,
                                       kernel: 3, stride: 2, padTop: 0, padBottom: 1, padLeft: 0, padRight: 1)
                let y = FeatureMap(batch: h.batch, channels: down.outChannels, height: g.outHeight, width: g.outWidth)
                scratch.run(down, y, h, geometry: g)
                h = y
            }
        }
        h = mid(h, scratch)
        normOut(h.pointer, h.pointer, batch: h.batch, spatial: h.spatial, silu: true)
        return scratch.same(convOut, h)
    }
}
