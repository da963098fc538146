/// ReLU linear attention with the "pad trick" (Sana's SanaLinearAttnProcessor2_0, attention_processor.py:5341-5390;
/// DC-AE's SanaMultiscaleLinearAttention.apply_linear_attention, attention_processor.py:921-928). The feature map
/// (ReLU) is applied by the caller; per (item, head), with q, k, v the head's `[N, D]` token rows:
///
///     S = vᵀ·k                      [D, D]   (torch: pad v with a row of ones, then v_pad·k, float32)
///     z = Σ_n k[n, :]               [D]      (the padded row of ones times k)
///     o[n, :] = (q[n, :]·Sᵀ) / (q[n, :]·z + eps)
///
/// which is `(v_pad·k·q)[:-1] / ((v_pad·k·q)[-1] + eps)` reordered. `eps` is 1e-15 in both references. The
/// quadratic form DC-AE uses when H·W ≤ D (`softmax`-free `kᵀq` normalised over keys, then `v·scores`) is the same
/// function, Σ_n v[n]·(k[n]·q[m]) / (Σ_n k[n]·q[m] + eps), so this kernel serves it too.
///
/// Head h of q/k/v starts at column `h · inputHeadStride` of each token row (D for Sana's `[B, N, H·D]`; 3D for
/// DC-AE, whose q, k, v of one head lie side by side). Output head h is written at column `h · D` of `o`.
/// Every (item, head) runs on one thread with single-threaded sgemm, so the result does not depend on the batch
/// or on how many threads there are. `scratch` holds `linearAttentionScratch(tokens:headDim:)` floats per
/// parallel slot; at least one slot.
// q: [B, N, ldq], k: [B, N, ldk], v: [B, N, ldv] (head h at h·inputHeadStride) -> o: [B, N, ldo ≥ H·D]
public func linearAttention(
    _ o: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
    inputHeadStride: Int, batch: Int, tokens n: Int, heads: Int, headDim d: Int, eps: Float,
    scratch: UnsafeMutablePointer<Float>, scratchCount: Int
) {
    let perSlot = linearAttentionScratch(tokens: n, headDim: d)
    precondition(scratchCount >= perSlot, "linearAttention: scratch must hold at least one slot")
    let problems = batch * heads
    guard problems > 0, n > 0 else { return }
    let slots = max(1, min(problems, kernelThreads * 4, scratchCount / perSlot))

    // One (item, head): S, z and the denominators in the slot.
    func solve(_ problem: Int, _ slot: UnsafeMutablePointer<Float>) {
        let b = problem / heads, h = problem % heads
        let s = slot, z = slot + d * d, den = slot + d * d + d
        let qh = q + b * n * ldq + h * inputHeadStride
        let kh = k + b * n * ldk + h * inputHeadStride
        let vh = v + b * n * ldv + h * inputHeadStride
        let oh = o + b * n * ldo + h * d
        // S[i, j] = Σ_n v[n, i]·k[n, j]
        sgemmAsSwitched(transA: true, transB: false, m: d, n: d, k: n, alpha: 1, vh, lda: ldv, kh, ldb: ldk,
                        beta: 0, s, ldc: d)
        for j in 0..<d { z[j] = 0 }
        for t in 0..<n {
            let row = kh + t * ldk
            for j in 0..<d { z[j] += row[j] }
        }
        // o[n, i] = Σ_j q[n, j]·S[i, j]
        sgemmAsSwitched(transA: false, transB: true, m: n, n: d, k: d, alpha: 1, qh, lda: ldq, s, ldb: d,
                        beta: 0, oh, ldc: ldo)
        for t in 0..<n {
            let row = qh + t * ldq
            var acc: Float = 0
            for j in 0..<d { acc += row[j] * z[j] }
            den[t] = acc + eps
        }
        for t in 0..<n {
            let row = oh + t * ldo, inv = den[t]
            for i in 0..<d { row[i] /= inv }
        }
    }

    blasThreads.singleThreaded {
        parallelFor(slots) { range in
            for slot in range {
                var problem = slot
                while problem < problems {
                    solve(problem, scratch + slot * perSlot)
                    problem += slots
                }
            }
        }
    }
}

/// Floats of scratch one parallel slot of `linearAttention` needs: S `[D, D]`, z `[D]`, denominators `[N]`.
public func linearAttentionScratch(tokens n: Int, headDim d: Int) -> Int { d * d + d + n }
