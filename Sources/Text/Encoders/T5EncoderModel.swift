// The T5 v1.1 / Flan-T5 encoder as PixArt reads prompts through it (transformers 5.24 models/t5/modeling_t5.py:
// `T5Stack.forward` lines 668-750 with T5Block, T5LayerSelfAttention, T5LayerFF): gated GELU feed-forward,
// RMS layer norm without mean or bias, unscaled attention scores plus a bidirectional relative-position bias
// computed once by the first layer and shared by all, a final norm. Computed in float32.
import Foundation
import Tensor
import Weights

public final class T5EncoderModel: @unchecked Sendable {
    public struct Config: Sendable, Equatable {
        public var vocabSize: Int
        public var dModel: Int
        public var dKV: Int
        public var dFF: Int
        public var layers: Int
        public var heads: Int
        public var buckets: Int
        public var maxDistance: Int
        public var eps: Double
        public var gated: Bool
        public var activation: String

        /// configuration_t5.py keys with its defaults.
        public init(json object: [String: JSONValue], file: String) throws {
            let c = ConfigReader(object: object, file: file)
            vocabSize = try c.int("vocab_size", default: 32128)
            dModel = try c.int("d_model", default: 512)
            dKV = try c.int("d_kv", default: 64)
            dFF = try c.int("d_ff", default: 2048)
            layers = try c.int("num_layers", default: 6)
            heads = try c.int("num_heads", default: 8)
            buckets = try c.int("relative_attention_num_buckets", default: 32)
            maxDistance = try c.int("relative_attention_max_distance", default: 128)
            eps = try c.double("layer_norm_epsilon", default: 1e-6)
            // configuration_t5.py: "gated-gelu" → gated, act "gelu_new"; "relu" → not gated
            let proj = try c.string("feed_forward_proj", default: "relu")
            gated = proj.hasPrefix("gated-")
            activation = gated ? String(proj.dropFirst(6)) : proj
            if activation == "gelu" && gated { activation = "gelu_new" }
            guard vocabSize > 0, dModel > 0, dKV > 0, dFF > 0, layers > 0, heads > 0, buckets >= 4, maxDistance > buckets / 4 else {
                throw TextError(.badConfig, file: file, "inconsistent sizes (d_model \(dModel), d_kv \(dKV), heads \(heads), buckets \(buckets), max_distance \(maxDistance))")
            }
            guard gated, activation == "gelu_new" else {
                throw TextError(.unsupported, file: file, "feed_forward_proj \(proj) is not supported (T5 v1.1/Flan: gated-gelu)")
            }
        }
    }

    struct Block {
        let attentionNorm, feedForwardNorm: WeightView
        let q, k, v, o: Projection
        let feedForward: GatedFeedForward
    }

    public let config: Config
    let embed: WeightMatrix
    let relativeBias: WeightView   // [buckets, heads], block 0 only
    let blocks: [Block]
    let finalNorm: WeightView
    let store: any WeightStore

    public init(config: Config, weights store: any WeightStore) throws {
        self.config = config
        self.store = store
        let d = config.dModel, inner = config.heads * config.dKV
        // T5EncoderModel ties encoder.embed_tokens to shared; checkpoints keep either name.
        let embedName = store.contains("encoder.embed_tokens.weight") ? "encoder.embed_tokens.weight" : "shared.weight"
        embed = try store.matrix(embedName)
        guard embed.shape == [config.vocabSize, d] else {
            throw TextError(.badWeights, "\(embedName) has shape \(embed.shape), the config says [\(config.vocabSize), \(d)]")
        }
        relativeBias = try vector(store, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                                  shape: [config.buckets, config.heads])
        blocks = try (0..<config.layers).map { i in
            let a = "encoder.block.\(i).layer.0.", f = "encoder.block.\(i).layer.1."
            return Block(
                attentionNorm: try vector(store, a + "layer_norm.weight", shape: [d]),
                feedForwardNorm: try vector(store, f + "layer_norm.weight", shape: [d]),
                q: try Projection(store, a + "SelfAttention.q.weight", in: d, out: inner),
                k: try Projection(store, a + "SelfAttention.k.weight", in: d, out: inner),
                v: try Projection(store, a + "SelfAttention.v.weight", in: d, out: inner),
                o: try Projection(store, a + "SelfAttention.o.weight", in: inner, out: d),
                feedForward: GatedFeedForward(
                    gate: try Projection(store, f + "DenseReluDense.wi_0.weight", in: d, out: config.dFF),
                    up: try Projection(store, f + "DenseReluDense.wi_1.weight", in: d, out: config.dFF),
                    down: try Projection(store, f + "DenseReluDense.wo.weight", in: config.dFF, out: d)))
        }
        finalNorm = try vector(store, "encoder.final_layer_norm.weight", shape: [d])
    }

    /// `T5Attention._relative_position_bucket` (lines 218-263), bidirectional, in torch's float32 arithmetic.
    static func bucket(_ relative: Int, buckets: Int, maxDistance: Int) -> Int {
        let half = buckets / 2
        var result = relative > 0 ? half : 0
        let distance = abs(relative)
        let maxExact = half / 2
        if distance < maxExact { return result + distance }
        let logRatio = Foundation.log(Float(distance) / Float(maxExact)) / Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let large = maxExact + Int(logRatio * Float(half - maxExact))
        result += min(large, half - 1)
        return result
    }

    /// Last hidden state `[B, N, d_model]` of `ids` `[B][N]` with `mask` `[B][N]`; every position is computed,
    /// padded ones included.
    public func callAsFunction(ids: [[Int]], mask: [[Int]], threads: Int = kernelThreads) throws -> Tensor {
        let (b, n) = try checkBatch(ids: ids, mask: mask, vocab: config.vocabSize)
        let d = config.dModel, h = config.heads, dk = config.dKV, inner = h * dk, ff = config.dFF, m = b * n
        let x = FloatBuffer(count: m * d), t = FloatBuffer(count: m * d)
        let q = FloatBuffer(count: m * inner), k = FloatBuffer(count: m * inner), v = FloatBuffer(count: m * inner)
        let a = FloatBuffer(count: m * inner), g = FloatBuffer(count: m * ff), u = FloatBuffer(count: m * ff)
        let keys = FloatBuffer(count: m), bias = FloatBuffer(count: h * n * n)
        let wide = FloatBuffer(count: halfLinearScratchCount(inFeatures: max(d, inner, ff)))
        let scoresCount = maskedAttentionScratchCount(batch: b, heads: h, tokens: n, threads: threads)
        let scores = FloatBuffer(count: scoresCount)
        for i in 0..<b { for j in 0..<n { keys.pointer[i * n + j] = mask[i][j] != 0 ? 1 : 0 } }

        // x = embed_tokens(ids) (line 681; dropout is identity in eval)
        for r in 0..<m { copyRow(x.pointer + r * d, embed, row: ids[r / n][r % n], columns: d) }
        // position_bias[h, i, j] = relative_attention_bias[bucket(j − i), h], from block 0 (compute_bias, lines 265-281)
        for i in 0..<n {
            for j in 0..<n {
                let bucket = Self.bucket(j - i, buckets: config.buckets, maxDistance: config.maxDistance)
                for head in 0..<h { bias.pointer[(head * n + i) * n + j] = relativeBias.pointer[bucket * h + head] }
            }
        }
        let eps = Float(config.eps)
        let mask = AttentionMask(keys: keys.pointer, causal: false, bias: bias.pointer)
        for block in blocks {
            // T5LayerSelfAttention: x = x + o(attention(layer_norm(x))), scores unscaled (scaling 1.0, line 198)
            rmsNorm(t.pointer, x.pointer, weight: block.attentionNorm.pointer, rows: m, features: d, eps: eps, offset: 0)
            block.q(q.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            block.k(k.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            block.v(v.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            maskedAttention(a.pointer, ldo: inner, q: q.pointer, ldq: inner, k: k.pointer, v: v.pointer, ldk: inner,
                            batch: b, tokens: n, heads: h, kvHeads: h, headDim: dk, scale: 1, softcap: nil, mask: mask,
                            scratch: scores.pointer, scratchCount: scoresCount, threads: threads)
            block.o(t.pointer, a.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            add(x.pointer, x.pointer, t.pointer, count: m * d)
            // T5LayerFF with T5DenseGatedActDense: x = x + wo(gelu_new(wi_0(t)) · wi_1(t)), t = layer_norm(x)
            // (lines 98-143)
            rmsNorm(t.pointer, x.pointer, weight: block.feedForwardNorm.pointer, rows: m, features: d, eps: eps, offset: 0)
            block.feedForward(t.pointer, t.pointer, rows: m, tokens: n, g: g.pointer, u: u.pointer, scratch: wide.pointer, threads: threads)
            add(x.pointer, x.pointer, t.pointer, count: m * d)
        }
        // final_layer_norm (line 745)
        rmsNorm(x.pointer, x.pointer, weight: finalNorm.pointer, rows: m, features: d, eps: eps, offset: 0)
        return x.tensor(shape: [b, n, d])
    }

    public var weightBytes: Int {
        blocks.reduce(0) { s, l in s + [l.q, l.k, l.v, l.o, l.feedForward.gate, l.feedForward.up, l.feedForward.down].reduce(0) { $0 + $1.storedBytes } } + embed.storedBytes
    }
}
