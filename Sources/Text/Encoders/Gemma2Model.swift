// Gemma 2 as Sana reads prompts through it: the decoder stack's last hidden state (transformers 5.24
// models/gemma2/modeling_gemma2.py `Gemma2Model.forward`, lines 396-455). Computed in float32 whatever the
// checkpoint's dtype: 16-bit weights are widened exactly, so the numbers are transformers' with dtype=float32.
import Foundation
import Tensor
import Weights

public final class Gemma2Model: @unchecked Sendable {
    public struct Config: Sendable, Equatable {
        public var vocabSize: Int
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var layers: Int
        public var heads: Int
        public var kvHeads: Int
        public var headDim: Int
        public var queryPreAttnScalar: Double
        public var slidingWindow: Int
        public var attnLogitSoftcapping: Double?
        public var rmsNormEps: Double
        public var ropeTheta: Double
        /// "sliding_attention" or "full_attention" per layer (default: sliding on even layers).
        public var layerTypes: [String]
        public var hiddenActivation: String
        public var causal: Bool

        /// configuration_gemma2.py keys with its defaults.
        public init(json object: [String: JSONValue], file: String) throws {
            let c = ConfigReader(object: object, file: file)
            vocabSize = try c.int("vocab_size")
            hiddenSize = try c.int("hidden_size")
            intermediateSize = try c.int("intermediate_size")
            layers = try c.int("num_hidden_layers")
            heads = try c.int("num_attention_heads")
            kvHeads = try c.int("num_key_value_heads", default: heads)
            headDim = try c.int("head_dim", default: hiddenSize / max(heads, 1))
            queryPreAttnScalar = try c.double("query_pre_attn_scalar", default: Double(headDim))
            slidingWindow = try c.int("sliding_window", default: 4096)
            attnLogitSoftcapping = try c.optionalDouble("attn_logit_softcapping")
            rmsNormEps = try c.double("rms_norm_eps", default: 1e-6)
            let rope = object["rope_parameters"]?.objectValue
            let legacyTheta = try c.double("rope_theta", default: 10000)
            ropeTheta = rope?["rope_theta"]?.doubleValue ?? legacyTheta
            if let type = rope?["rope_type"]?.stringValue, type != "default" {
                throw TextError(.unsupported, file: file, "rope_type \(type) is not supported (default only)")
            }
            let n = layers
            layerTypes = object["layer_types"]?.arrayValue?.compactMap(\.stringValue)
                ?? (0..<n).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
            hiddenActivation = try c.string("hidden_activation", default: "gelu_pytorch_tanh")
            causal = !(object["use_bidirectional_attention"]?.boolValue ?? false)
            guard vocabSize > 0, hiddenSize > 0, layers > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0,
                  headDim > 0, headDim % 2 == 0, intermediateSize > 0, layerTypes.count == layers else {
                throw TextError(.badConfig, file: file, "inconsistent sizes: \(heads) heads over \(kvHeads) key/value heads, head_dim \(headDim), \(layerTypes.count) layer_types for \(layers) layers")
            }
            guard ["gelu_pytorch_tanh", "gelu_new"].contains(hiddenActivation) else {
                throw TextError(.unsupported, file: file, "hidden_activation \(hiddenActivation) is not supported (gelu_pytorch_tanh)")
            }
        }
    }

    /// One decoder layer's weights (modeling_gemma2.py `Gemma2DecoderLayer`, lines 284-330).
    struct Layer {
        let inputNorm, postAttentionNorm, preFeedforwardNorm, postFeedforwardNorm: WeightView
        let q, k, v, o: Projection
        let mlp: GatedFeedForward
        let sliding: Bool
    }

    public let config: Config
    let embed: WeightMatrix
    let layers: [Layer]
    let norm: WeightView
    let store: any WeightStore

    public init(config: Config, weights store: any WeightStore) throws {
        self.config = config
        self.store = store
        // Gemma2Model checkpoints name tensors `embed_tokens.…`; Gemma2ForCausalLM ones `model.embed_tokens.…`.
        let p = store.contains("embed_tokens.weight") ? "" : "model."
        let h = config.hiddenSize, d = config.headDim
        embed = try store.matrix(p + "embed_tokens.weight")
        guard embed.shape == [config.vocabSize, h] else {
            throw TextError(.badWeights, "\(p)embed_tokens.weight has shape \(embed.shape), the config says [\(config.vocabSize), \(h)]")
        }
        layers = try (0..<config.layers).map { i in
            let l = "\(p)layers.\(i)."
            return Layer(
                inputNorm: try vector(store, l + "input_layernorm.weight", shape: [h]),
                postAttentionNorm: try vector(store, l + "post_attention_layernorm.weight", shape: [h]),
                preFeedforwardNorm: try vector(store, l + "pre_feedforward_layernorm.weight", shape: [h]),
                postFeedforwardNorm: try vector(store, l + "post_feedforward_layernorm.weight", shape: [h]),
                q: try Projection(store, l + "self_attn.q_proj.weight", in: h, out: config.heads * d),
                k: try Projection(store, l + "self_attn.k_proj.weight", in: h, out: config.kvHeads * d),
                v: try Projection(store, l + "self_attn.v_proj.weight", in: h, out: config.kvHeads * d),
                o: try Projection(store, l + "self_attn.o_proj.weight", in: config.heads * d, out: h),
                mlp: GatedFeedForward(
                    gate: try Projection(store, l + "mlp.gate_proj.weight", in: h, out: config.intermediateSize),
                    up: try Projection(store, l + "mlp.up_proj.weight", in: h, out: config.intermediateSize),
                    down: try Projection(store, l + "mlp.down_proj.weight", in: config.intermediateSize, out: h)),
                sliding: config.layerTypes[i] == "sliding_attention")
        }
        norm = try vector(store, p + "norm.weight", shape: [h])
    }

    /// Last hidden state `[B, N, H]` of `ids` `[B][N]` with `mask` `[B][N]` (1 = token, 0 = padding); every
    /// position is computed, padded ones included (the pipelines read them). Positions are 0..<N whatever the
    /// padding (modeling_gemma2.py line 417).
    public func callAsFunction(ids: [[Int]], mask: [[Int]], threads: Int = kernelThreads) throws -> Tensor {
        let (b, n) = try checkBatch(ids: ids, mask: mask, vocab: config.vocabSize)
        let h = config.hiddenSize, d = config.headDim, hq = config.heads * d, hkv = config.kvHeads * d
        let ff = config.intermediateSize, m = b * n

        // Buffers for the whole pass.
        let x = FloatBuffer(count: m * h), t = FloatBuffer(count: m * h)
        let q = FloatBuffer(count: m * hq), k = FloatBuffer(count: m * hkv), v = FloatBuffer(count: m * hkv)
        let a = FloatBuffer(count: m * hq), g = FloatBuffer(count: m * ff), u = FloatBuffer(count: m * ff)
        let keys = FloatBuffer(count: m)
        let cos = FloatBuffer(count: n * d / 2), sin = FloatBuffer(count: n * d / 2)
        let wide = FloatBuffer(count: halfLinearScratchCount(inFeatures: max(h, hq, ff)))
        let scoresCount = maskedAttentionScratchCount(batch: b, heads: config.heads, tokens: n, threads: threads)
        let scores = FloatBuffer(count: scoresCount)
        for i in 0..<b { for j in 0..<n { keys.pointer[i * n + j] = mask[i][j] != 0 ? 1 : 0 } }

        // inputs_embeds = embed_tokens(ids) · √H, the scale a tensor of the model dtype (float32 here)
        // (Gemma2TextScaledWordEmbedding, lines 332-344)
        let scale = Float(Double(h).squareRoot())
        for r in 0..<m {
            copyRow(x.pointer + r * h, embed, row: ids[r / n][r % n], columns: h)
            for j in 0..<h { x.pointer[r * h + j] *= scale }
        }
        // position_embeddings = rotary_emb(positions 0..<N) (lines 103-128)
        ropeTables(cos: cos.pointer, sin: sin.pointer, tokens: n, headDim: d, base: Float(config.ropeTheta))
        let attnScale = Float(Foundation.pow(config.queryPreAttnScalar, -0.5))  // line 221
        let softcap = config.attnLogitSoftcapping.map { Float($0) }
        let eps = Float(config.rmsNormEps)

        for layer in layers {
            // residual = x; t = input_layernorm(x)                                  (lines 307-309)
            rmsNorm(t.pointer, x.pointer, weight: layer.inputNorm.pointer, rows: m, features: h, eps: eps, offset: 1)
            // q, k, v = projections [M, H·D], [M, Hkv·D]; RoPE on q and k          (lines 247-254)
            layer.q(q.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            layer.k(k.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            layer.v(v.pointer, t.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            applyRotary(q.pointer, ldx: hq, cos: cos.pointer, sin: sin.pointer, batch: b, tokens: n, heads: config.heads, headDim: d)
            applyRotary(k.pointer, ldx: hkv, cos: cos.pointer, sin: sin.pointer, batch: b, tokens: n, heads: config.kvHeads, headDim: d)
            // a = eager attention: scale 1/√query_pre_attn_scalar, soft-capping, causal (+ sliding window) and
            // padding mask, keys/values shared by head groups                       (lines 176-208, 262-276)
            let mask = AttentionMask(keys: keys.pointer, causal: config.causal,
                                     window: layer.sliding ? config.slidingWindow : nil)
            maskedAttention(a.pointer, ldo: hq, q: q.pointer, ldq: hq, k: k.pointer, v: v.pointer, ldk: hkv,
                            batch: b, tokens: n, heads: config.heads, kvHeads: config.kvHeads, headDim: d,
                            scale: attnScale, softcap: softcap, mask: mask,
                            scratch: scores.pointer, scratchCount: scoresCount, threads: threads)
            // t = post_attention_layernorm(o_proj(a)); x = residual + t             (lines 318-319)
            layer.o(t.pointer, a.pointer, rows: m, tokens: n, scratch: wide.pointer, threads: threads)
            rmsNorm(t.pointer, t.pointer, weight: layer.postAttentionNorm.pointer, rows: m, features: h, eps: eps, offset: 1)
            add(x.pointer, x.pointer, t.pointer, count: m * h)
            // t = pre_feedforward_layernorm(x); mlp: down(gelu_tanh(gate(t)) · up(t)) (lines 69-82, 321-323)
            rmsNorm(t.pointer, x.pointer, weight: layer.preFeedforwardNorm.pointer, rows: m, features: h, eps: eps, offset: 1)
            layer.mlp(t.pointer, t.pointer, rows: m, tokens: n, g: g.pointer, u: u.pointer, scratch: wide.pointer, threads: threads)
            // x = residual + post_feedforward_layernorm(t)                           (lines 324-325)
            rmsNorm(t.pointer, t.pointer, weight: layer.postFeedforwardNorm.pointer, rows: m, features: h, eps: eps, offset: 1)
            add(x.pointer, x.pointer, t.pointer, count: m * h)
        }
        // last_hidden_state = norm(x)                                                (line 450)
        rmsNorm(x.pointer, x.pointer, weight: norm.pointer, rows: m, features: h, eps: eps, offset: 1)
        return x.tensor(shape: [b, n, h])
    }

    /// Bytes of the weights as stored (16-bit ones stay 16-bit in memory).
    public var weightBytes: Int {
        let l = layers.reduce(0) { s, l in s + [l.q, l.k, l.v, l.o, l.mlp.gate, l.mlp.up, l.mlp.down].reduce(0) { $0 + $1.storedBytes } }
        return l + embed.storedBytes
    }
}

/// B and N of a batch after checking it: rows of equal length, masks to match, ids inside the vocabulary.
func checkBatch(ids: [[Int]], mask: [[Int]], vocab: Int) throws -> (Int, Int) {
    guard let n = ids.first?.count, n > 0 else { throw TextError(.badInput, "empty batch or empty rows") }
    guard ids.allSatisfy({ $0.count == n }), mask.count == ids.count, mask.allSatisfy({ $0.count == n }) else {
        throw TextError(.badInput, "rows of ids and masks must all have \(n) entries (pad with the tokenizer)")
    }
    for row in ids { for id in row where id < 0 || id >= vocab {
        throw TextError(.badInput, "token id \(id) is outside the encoder's vocabulary of \(vocab)")
    } }
    return (ids.count, n)
}
