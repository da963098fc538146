import Foundation
import Tensor
import Weights

// Building blocks of AutoencoderDC (diffusers models/autoencoders/autoencoder_dc.py, 0.42.1): ResBlock,
// EfficientViTBlock (multi-scale ReLU linear attention + GLUMBConv), and the pixel (un)shuffle or
// interpolate/strided-conv up and down blocks.

/// The channel norms of DC-AE blocks (`get_normalization`, normalization.py:633-648, eps 1e-5): RMSNorm across the
/// channels of each pixel with weight and bias, or BatchNorm in eval mode folded into a per-channel affine map.
enum DCChannelNorm: Sendable {
    case rms(weight: WeightView, bias: WeightView)
    case batch(scale: [Float], shift: [Float])

    init(_ store: WeightStore, _ prefix: String, type: String, channels c: Int) throws {
        switch type {
        case "rms_norm":
            self = .rms(weight: try loadWeight(store, prefix + ".weight", shape: [c]), bias: try loadWeight(store, prefix + ".bias", shape: [c]))
        case "batch_norm":
            let w = try loadWeight(store, prefix + ".weight", shape: [c]), b = try loadWeight(store, prefix + ".bias", shape: [c])
            let mean = try loadWeight(store, prefix + ".running_mean", shape: [c])
            let variance = try loadWeight(store, prefix + ".running_var", shape: [c])
            var scale = [Float](repeating: 0, count: c), shift = scale
            for i in 0..<c {
                let s = Double(w.pointer[i]) / (Double(variance.pointer[i]) + 1e-5).squareRoot()
                scale[i] = Float(s)
                shift[i] = Float(Double(b.pointer[i]) - Double(mean.pointer[i]) * s)
            }
            self = .batch(scale: scale, shift: shift)
        default:
            throw ModelError(.unsupportedConfig, "\(prefix): norm type \"\(type)\" is not supported (rms_norm or batch_norm)")
        }
    }

    // x: [B, C, H, W], normalised in place
    func callAsFunction(_ x: FeatureMap) {
        callAsFunction(x.pointer, batch: x.batch, channels: x.channels, spatial: x.spatial)
    }

    // x: [B, C, S] (S pixels, e.g. a strip of rows), normalised in place; each pixel on its own
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int) {
        switch self {
        case .rms(let weight, let bias):
            rmsNormChannels(x, x, weight: weight.pointer, bias: bias.pointer, batch: batch, channels: channels, spatial: spatial, eps: 1e-5)
        case .batch(let scale, let shift):
            channelAffine(x, x, scale: scale, shift: shift, batch: batch, channels: channels, spatial: spatial)
        }
    }
}

/// The activations DC-AE configs name (`get_activation`, activations.py:27-50): silu (= swish) or relu.
struct DCActivation: Sendable {
    let isReLU: Bool

    init(_ name: String, _ context: String) throws {
        switch name {
        case "silu", "swish": isReLU = false
        case "relu": isReLU = true
        default: throw ModelError(.unsupportedConfig, "\(context): activation \"\(name)\" is not supported (silu, swish, relu)")
        }
    }

    // x: [count] in place
    func callAsFunction(_ x: FeatureMap) {
        if isReLU {
            relu(x.pointer, x.pointer, count: x.count)
        } else {
            silu(x.pointer, x.pointer, count: x.count)
        }
    }
}

/// ResBlock (autoencoder_dc.py:30-56): `x + norm(conv2(act(conv1(x))))`, conv1 3×3 with bias, conv2 3×3 without.
struct DCResBlock: Sendable {
    let conv1, conv2: Conv2dLayer
    let norm: DCChannelNorm
    let activation: DCActivation

    init(_ store: WeightStore, _ prefix: String, channels c: Int, normType: String, act: String) throws {
        conv1 = try Conv2dLayer(store, prefix + ".conv1", in: c, out: c, kernel: 3)
        conv2 = try Conv2dLayer(store, prefix + ".conv2", in: c, out: c, kernel: 3, bias: false)
        norm = try DCChannelNorm(store, prefix + ".norm", type: normType, channels: c)
        activation = try DCActivation(act, prefix)
    }

    // x: [B, C, H, W] -> [B, C, H, W]  (x itself is the output: the residual is added into it)
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        let h = scratch.same(conv1, x)
        activation(h)
        // conv2, norm and + x a strip of rows at a time (whole where the conv does not run in strips): x and h are
        // the only whole maps the block holds
        let c = x.channels, plane = x.spatial
        scratch.same(conv2, h) { item, firstRow, rows, out in
            norm(out, batch: 1, channels: c, spatial: rows * x.width)
            addPlanes(x.pointer + item * c * plane + firstRow * x.width, ldy: plane, out, planes: c, count: rows * x.width)
        }
        return x
    }
}

/// EfficientViTBlock (autoencoder_dc.py:59-85): SanaMultiscaleLinearAttention with its residual
/// (attention_processor.py:866-928, processor 5245-5300), then GLUMBConv (expand 4, RMSNorm) with its residual.
///
/// Attention: q, k, v = to_q/k/v(x) (no bias) as channels `[q | k | v]` (3I, I = heads·D, heads = C / D); each
/// multi-scale branch adds a depthwise k×k conv then a 1×1 conv grouped by 3·heads; all `3I·(1 + scales)` channels are
/// cut into groups of 3D — group g's first D channels are its q, next D its k, last D its v — ReLU on q and k,
/// linear attention per group (eps 1e-15), to_out (no bias) over the `I·(1 + scales)` outputs, the channel norm,
/// plus x.
struct EfficientViTBlock: Sendable {
    struct Scale: Sendable {
        let kernel: Int
        let projIn: DepthwiseConv2dLayer   // proj_in [3I, 1, k, k], depthwise, no bias
        let projOut: WeightView    // proj_out [3I, D, 1, 1], groups 3·heads, no bias
    }

    let toQ, toK, toV: LinearLayer   // [I, C], no bias
    let scales: [Scale]
    let toOut: LinearLayer           // [C, I·(1 + scales)], no bias
    let normOut: DCChannelNorm
    let ffn: GLUMBConv               // conv_out
    let channels, heads, headDim: Int

    init(_ store: WeightStore, _ prefix: String, channels c: Int, headDim d: Int, multiscales: [Int], normType: String) throws {
        guard d > 0, c >= d else {
            throw ModelError(.unsupportedConfig, "\(prefix): attention_head_dim \(d) does not fit \(c) channels")
        }
        channels = c
        headDim = d
        heads = c / d
        let inner = heads * d
        toQ = try LinearLayer(store, prefix + ".attn.to_q", in: c, out: inner, bias: false)
        toK = try LinearLayer(store, prefix + ".attn.to_k", in: c, out: inner, bias: false)
        toV = try LinearLayer(store, prefix + ".attn.to_v", in: c, out: inner, bias: false)
        scales = try multiscales.enumerated().map { i, k in
            guard k > 0, k % 2 == 1 else { throw ModelError(.unsupportedConfig, "\(prefix): multi-scale kernel \(k) must be odd") }
            let p = prefix + ".attn.to_qkv_multiscale.\(i)"
            return Scale(kernel: k, projIn: try DepthwiseConv2dLayer(store, p + ".proj_in", channels: 3 * inner, kernel: k, bias: false),
                         projOut: try loadWeight(store, p + ".proj_out.weight", shape: [3 * inner, d, 1, 1]))
        }
        toOut = try LinearLayer(store, prefix + ".attn.to_out", in: inner * (1 + multiscales.count), out: c, bias: false)
        normOut = try DCChannelNorm(store, prefix + ".attn.norm_out", type: normType, channels: c)
        ffn = try GLUMBConv(store, prefix + ".conv_out", in: c, out: c, expandRatio: 4, rmsNorm: true)
    }

    // x: [B, C, H, W] -> [B, C, H, W]
    // (each buffer lives in the scope of its last reader, so a block at 64² holds about a third of what it would
    // if all were alive at once)
    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        let b = x.batch, c = channels, n = x.spatial, d = headDim, inner = heads * d
        let total = 3 * inner * (1 + scales.count), groups = total / (3 * d)
        let tokens = FloatBuffer(count: b * n * c)
        transpose(tokens.pointer, x.pointer, batch: b, rows: c, columns: n)

        let grouped = FloatBuffer(count: b * n * total)
        do {
            // [q | k | v | scale 0 | scale 1 | …] as channels               [B, 3I·(1+S), N]
            let all = FloatBuffer(count: b * total * n)
            do {
                // q, k, v from the tokens of x                             [B, N, I] each
                let q = FloatBuffer(count: b * n * inner), k = FloatBuffer(count: b * n * inner), v = FloatBuffer(count: b * n * inner)
                toQ(q.pointer, tokens.pointer, rows: b * n, items: b)
                toK(k.pointer, tokens.pointer, rows: b * n, items: b)
                toV(v.pointer, tokens.pointer, rows: b * n, items: b)
                let depth = FloatBuffer(count: 3 * inner * n)
                for item in 0..<b {
                    let dst = all.pointer + item * total * n
                    for (part, src) in [q, k, v].enumerated() {
                        transpose(dst + part * inner * n, src.pointer + item * n * inner, batch: 1, rows: n, columns: inner)
                    }
                    for (s, scale) in scales.enumerated() {
                        depthwiseConv2d(depth.pointer, dst, scale.projIn.weight.pointer, nil, batch: 1, channels: 3 * inner,
                                        height: x.height, width: x.width, kernel: scale.kernel)
                        groupedPointwiseConv2d(dst + (1 + s) * 3 * inner * n, depth.pointer, scale.projOut.pointer, batch: 1,
                                               groups: 3 * heads, groupChannels: d, spatial: n)
                    }
                    for g in 0..<groups {   // ReLU on each group's q and k channels
                        let qk = dst + g * 3 * d * n
                        relu(qk, qk, count: 2 * d * n)
                    }
                }
            }
            transpose(grouped.pointer, all.pointer, batch: b, rows: total, columns: n)
        }

        // linear attention per group of 3D channels                       [B, N, G·D]
        do {
            let attended = FloatBuffer(count: b * n * groups * d)
            let per = linearAttentionScratch(tokens: n, headDim: d)
            let scratch = FloatBuffer(count: per * max(1, min(b * groups, kernelThreads * 4)))
            linearAttention(attended.pointer, ldo: groups * d, q: grouped.pointer, ldq: total, k: grouped.pointer + d, ldk: total,
                            v: grouped.pointer + 2 * d, ldv: total, inputHeadStride: 3 * d, batch: b, tokens: n, heads: groups,
                            headDim: d, eps: 1e-15, scratch: scratch.pointer, scratchCount: scratch.count)
            // to_out                                                       [B, N, C]
            toOut(tokens.pointer, attended.pointer, rows: b * n, items: b)
        }

        // back to channels, norm, + x                                      [B, C, H, W]
        let h = FeatureMap(batch: b, channels: c, height: x.height, width: x.width)
        transpose(h.pointer, tokens.pointer, batch: b, rows: n, columns: c)
        normOut(h)
        add(h.pointer, h.pointer, x.pointer, count: h.count)

        // GLUMBConv + residual
        let y = FeatureMap(batch: b, channels: c, height: x.height, width: x.width)
        do {
            let ffScratch = FloatBuffer(count: ffn.scratchCount(batch: b, spatial: n))
            ffn(y.pointer, h.pointer, batch: b, height: x.height, width: x.width, scratch: ffScratch.pointer)
        }
        add(y.pointer, y.pointer, h.pointer, count: y.count)
        return y
    }
}

/// DCDownBlock2d (autoencoder_dc.py:110-148): `pixel_unshuffle(conv3×3(x))` to out/4 channels (pixel_unshuffle type)
/// or a stride-2 conv3×3 to out channels (conv type); with `shortcut`, plus `pixel_unshuffle(x)` averaged over groups
/// of 4·in/out channels.
struct DCDownBlock: Sendable {
    let conv: Conv2dLayer
    let unshuffle: Bool
    let shortcut: Bool
    let inChannels, outChannels: Int

    init(_ store: WeightStore, _ prefix: String, in cin: Int, out cout: Int, pixelUnshuffle: Bool, shortcut: Bool) throws {
        guard !pixelUnshuffle || cout % 4 == 0, !shortcut || (4 * cin) % cout == 0 else {
            throw ModelError(.unsupportedConfig, "\(prefix): down block \(cin) → \(cout) channels does not divide evenly")
        }
        conv = try Conv2dLayer(store, prefix + ".conv", in: cin, out: pixelUnshuffle ? cout / 4 : cout, kernel: 3)
        unshuffle = pixelUnshuffle
        self.shortcut = shortcut
        inChannels = cin
        outChannels = cout
    }

    // x: [B, in, H, W] -> [B, out, H/2, W/2]
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        let h2 = x.height / 2, w2 = x.width / 2
        let y = FeatureMap(batch: x.batch, channels: outChannels, height: h2, width: w2)
        if unshuffle {
            let c = scratch.same(conv, x)
            pixelUnshuffle2x(y.pointer, c.pointer, batch: x.batch, channels: c.channels, height: h2, width: w2)
        } else {
            scratch.run(conv, y, x, geometry: Conv2dGeometry(inChannels: inChannels, outChannels: outChannels, height: x.height,
                                                             width: x.width, kernel: 3, stride: 2, padding: 1))
        }
        if shortcut {
            let u = FeatureMap(batch: x.batch, channels: 4 * inChannels, height: h2, width: w2)
            pixelUnshuffle2x(u.pointer, x.pointer, batch: x.batch, channels: inChannels, height: h2, width: w2)
            let mean = FeatureMap(batch: x.batch, channels: outChannels, height: h2, width: w2)
            channelGroupMean(mean.pointer, u.pointer, batch: x.batch, channels: outChannels, group: 4 * inChannels / outChannels,
                             spatial: h2 * w2)
            add(y.pointer, y.pointer, mean.pointer, count: y.count)
        }
        return y
    }
}

/// DCUpBlock2d (autoencoder_dc.py:151-190): nearest ×2 then conv3×3 (interpolate type) or `pixel_shuffle(conv3×3(x))`
/// from 4·out channels (pixel_shuffle type); with `shortcut`, plus `pixel_shuffle(repeat_interleave(x, 4·out/in))`.
struct DCUpBlock: Sendable {
    let conv: Conv2dLayer
    let interpolate: Bool
    let shortcut: Bool
    let inChannels, outChannels: Int

    init(_ store: WeightStore, _ prefix: String, in cin: Int, out cout: Int, interpolate: Bool, shortcut: Bool) throws {
        guard !shortcut || (4 * cout) % cin == 0 else {
            throw ModelError(.unsupportedConfig, "\(prefix): up block \(cin) → \(cout) channels does not divide evenly")
        }
        conv = try Conv2dLayer(store, prefix + ".conv", in: cin, out: interpolate ? cout : 4 * cout, kernel: 3)
        self.interpolate = interpolate
        self.shortcut = shortcut
        inChannels = cin
        outChannels = cout
    }

    // x: [B, in, H, W] -> [B, out, 2H, 2W]
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        let y: FeatureMap
        if interpolate {
            y = scratch.upsampledSame(conv, x)    // conv(nearest ×2 (x)), the upsampled map never whole
        } else {
            let c = scratch.same(conv, x)
            y = FeatureMap(batch: x.batch, channels: outChannels, height: 2 * x.height, width: 2 * x.width)
            pixelShuffle2x(y.pointer, c.pointer, batch: x.batch, channels: outChannels, height: x.height, width: x.width)
        }
        if shortcut {   // + pixel_shuffle(repeat_interleave(x)), without making either map
            addPixelShuffledRepeat(y.pointer, x.pointer, batch: x.batch, channels: inChannels, outChannels: outChannels,
                                   height: x.height, width: x.width)
        }
        return y
    }
}

/// One entry of an encoder or decoder stage (`nn.Sequential` of get_block results and up/down blocks).
enum DCBlock: Sendable {
    case res(DCResBlock)
    case vit(EfficientViTBlock)
    case down(DCDownBlock)
    case up(DCUpBlock)

    /// `get_block` (autoencoder_dc.py:88-107).
    init(_ store: WeightStore, _ prefix: String, type: String, channels: Int, headDim: Int, normType: String, act: String,
         multiscales: [Int]) throws {
        switch type {
        case "ResBlock":
            self = .res(try DCResBlock(store, prefix, channels: channels, normType: normType, act: act))
        case "EfficientViTBlock":
            self = .vit(try EfficientViTBlock(store, prefix, channels: channels, headDim: headDim, multiscales: multiscales,
                                              normType: normType))
        default:
            throw ModelError(.unsupportedConfig, "\(prefix): block type \"\(type)\" is not supported (ResBlock or EfficientViTBlock)")
        }
    }

    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        switch self {
        case .res(let block): return block(x, scratch)
        case .vit(let block): return block(x)
        case .down(let block): return block(x, scratch)
        case .up(let block): return block(x, scratch)
        }
    }
}
