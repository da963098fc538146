import Foundation

/// Which keys a query row may attend to, and what is added to its scores.
public struct AttentionMask {
    /// Key padding: `keys[b·N + j]` ≠ 0 keeps key j of item b. nil keeps every key.
    public var keys: UnsafePointer<Float>?
    /// Causal (decoder): key j ≤ query i.
    public var causal: Bool
    /// Sliding window: i − j < window (transformers `sliding_window_overlay`), nil for none.
    public var window: Int?
    /// Added to every item's scores after soft-capping: `[H, N, N]` (T5's relative position bias), or nil.
    public var bias: UnsafePointer<Float>?

    public init(keys: UnsafePointer<Float>?, causal: Bool, window: Int? = nil, bias: UnsafePointer<Float>? = nil) {
        self.keys = keys
        self.causal = causal
        self.window = window
        self.bias = bias
    }
}

/// Scratch floats `maskedAttention` needs: one `[N, N]` score block per concurrent (item, head).
public func maskedAttentionScratchCount(batch: Int, heads: Int, tokens n: Int, threads: Int) -> Int {
    max(1, min(batch * heads, 4 * max(threads, 1))) * n * n
}

/// Self-attention of the text encoders as transformers' eager path computes it (models/gemma2/modeling_gemma2.py
/// `eager_attention_forward`; models/t5/modeling_t5.py `eager_attention_forward`): per (item, head)
/// `S = scale·Q·Kᵀ`, soft-capped `cap·tanh(S/cap)` when `softcap` is set, plus `mask.bias`; disallowed keys get
/// float32's lowest value added, which makes their weight exactly 0 — or, when a row allows no key at all (a
/// left-padded query), makes every weight equal: such a row averages V over all N keys, as torch does. Then a
/// float32 softmax and `O = P·V`. Grouped-query: head h reads key/value head h / (heads / kvHeads).
/// (item, head) problems run in parallel on `threads`, each with single-threaded sgemm (so the result does not
/// depend on the batch or the thread count).
// q: [B, N, ldq ≥ H·D], k/v: [B, N, ldk ≥ Hkv·D], scratch: maskedAttentionScratchCount -> o: [B, N, ldo ≥ H·D]
public func maskedAttention(
    _ o: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldk: Int,
    batch: Int, tokens n: Int, heads: Int, kvHeads: Int, headDim d: Int,
    scale: Float, softcap: Float?, mask: AttentionMask,
    scratch: UnsafeMutablePointer<Float>, scratchCount: Int, threads: Int
) {
    precondition(heads % kvHeads == 0, "maskedAttention: \(heads) heads do not group over \(kvHeads) key/value heads")
    precondition(scratchCount >= n * n, "maskedAttention: scratch must hold one [N, N] block")
    let problems = batch * heads
    let slots = max(1, min(problems, 4 * max(threads, 1), scratchCount / (n * n)))
    let group = heads / kvHeads

    func solve(_ problem: Int, _ s: UnsafeMutablePointer<Float>, switched: Bool) {
        let gemm = switched ? sgemmAsSwitched : sgemm
        let b = problem / heads, h = problem % heads, g = h / group
        let qh = q + b * n * ldq + h * d
        let kh = k + b * n * ldk + g * d, vh = v + b * n * ldk + g * d
        gemm(false, true, n, n, d, scale, qh, ldq, kh, ldk, 0, s, n)
        for i in 0..<n {
            let row = s + i * n
            if let cap = softcap {
                for j in 0..<n { row[j] = cap * Foundation.tanh(row[j] / cap) }
            }
            if let bias = mask.bias {
                let br = bias + (h * n + i) * n
                for j in 0..<n { row[j] += br[j] }
            }
            var any = false
            for j in 0..<n {
                var keep = mask.keys.map { $0[b * n + j] != 0 } ?? true
                if mask.causal && j > i { keep = false }
                if let w = mask.window, i - j >= w { keep = false }
                if keep { any = true } else { row[j] = -.greatestFiniteMagnitude }
            }
            if any {
                softmaxRow(row, n)
            } else {
                for j in 0..<n { row[j] = 1 / Float(n) }
            }
        }
        gemm(false, false, n, d, n, 1, s, n, vh, ldk, 0, o + b * n * ldo + h * d, ldo)
    }

    // Always single-threaded sgemm per (item, head), whatever the batch and `threads`: OpenBLAS gives other bits
    // at other thread counts, and a prompt's embedding must not depend on its batch-mates.
    blasThreads.singleThreaded {
        if slots == 1 || threads <= 1 {
            for p in 0..<problems { solve(p, scratch, switched: true) }
            return
        }
        parallelFor(slots) { range in
            for slot in range {
                var p = slot
                while p < problems {
                    solve(p, scratch + slot * n * n, switched: true)
                    p += slots
                }
            }
        }
    }
}
