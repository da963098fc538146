import COpenBLAS
import Foundation

/// Multi-head scaled dot-product attention (torch SDPA default scale 1/sqrt(D); attention_processor.py
/// AttnProcessor2_0). Head h owns features h·D ..< (h+1)·D of every row, so q, k, v and o are read and written in
/// place through row strides — no head split copies. Per (item, head) and per chunk of query rows:
/// `S = (Q·Kᵀ)/sqrt(D)` by sgemm, the key bias, a numerically stable row softmax (max-subtracted), `O = S·V` by sgemm.
///
/// The work items are (item, head, chunk of `attentionChunkRows` query rows): every one runs on one thread with
/// single-threaded sgemm (OpenBLAS switched to one thread, process-wide, under `blasThreads` held exclusively, and
/// restored), spread over the cores. A chunk's bits depend only on its own rows, the keys and the chunk size — never
/// on the batch, the number of heads or the thread count (OpenBLAS gives other bits for other M or thread counts).
/// `scratch` holds scores: at least `keyTokens` floats (then one query row per chunk); `attentionChunkRows ·
/// keyTokens` per concurrent item lets each run whole chunks. The chunk size is the smaller of 64 rows and what
/// the scratch holds for one item, so it depends on the caller's scratch size, not on the batch.
///
/// `keyBias`, when given, is added to every score row of its item before the softmax: the additive mask of
/// masked cross-attention (`(1 − mask)·−10000`, pixart_transformer_2d.py / sana_transformer.py `forward`,
/// then `attn_mask` of SDPA).
// q: [B, Nq, ldq ≥ H·D], k: [B, Nk, ldk], v: [B, Nk, ldv], keyBias: [B, Nk]? -> o: [B, Nq, ldo]
public func attention(
    _ o: UnsafeMutablePointer<Float>, ldo: Int,
    q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
    batch: Int, queryTokens nq: Int, keyTokens nk: Int, heads: Int, headDim d: Int,
    keyBias: UnsafePointer<Float>? = nil,
    scratch: UnsafeMutablePointer<Float>, scratchCount: Int
) {
    precondition(scratchCount >= nk, "attention: scratch must hold at least one row of scores")
    guard nq > 0, batch * heads > 0 else { return }
    let alpha = Float(1 / Double(d).squareRoot())
    let chunk = max(1, min(attentionChunkRows, nq, scratchCount / nk))
    let chunks = (nq + chunk - 1) / chunk
    let items = batch * heads * chunks
    let slots = max(1, min(items, kernelThreads * 4, scratchCount / (chunk * nk)))

    // One (item, head, chunk of query rows) in `scores` (chunk·nk floats).
    func solve(_ item: Int, _ scores: UnsafeMutablePointer<Float>) {
        let problem = item / chunks, r0 = (item % chunks) * chunk
        let b = problem / heads, h = problem % heads
        let rows = min(chunk, nq - r0)
        sgemmAsSwitched(transA: false, transB: true, m: rows, n: nk, k: d, alpha: alpha,
                        q + (b * nq + r0) * ldq + h * d, lda: ldq, k + b * nk * ldk + h * d, ldb: ldk,
                        beta: 0, scores, ldc: nk)
        if let keyBias {
            let bias = keyBias + b * nk
            for r in 0..<rows {
                let row = scores + r * nk
                for j in 0..<nk { row[j] += bias[j] }
            }
        }
        for r in 0..<rows { softmaxRow(scores + r * nk, nk) }
        sgemmAsSwitched(transA: false, transB: false, m: rows, n: d, k: nk, alpha: 1,
                        scores, lda: nk, v + b * nk * ldv + h * d, ldb: ldv,
                        beta: 0, o + (b * nq + r0) * ldo + h * d, ldc: ldo)
    }

    blasThreads.singleThreaded {
        parallelFor(slots) { range in
            for slot in range {
                var item = slot
                while item < items {
                    solve(item, scratch + slot * chunk * nk)
                    item += slots
                }
            }
        }
    }
}

/// Query rows per work item of `attention`.
public let attentionChunkRows = 64

/// Stable softmax of each row in place: `e^(x − max) / Σ e^(x − max)`.
// x: [rows, columns] -> x
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns n: Int) {
    parallelFor(rows, grain: max(1, 4096 / max(n, 1))) { range in
        for r in range { softmaxRow(x + r * n, n) }
    }
}

// row: [n] -> row, on the calling thread
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = rowMax(row, n)
    var sum: Float = 0
    var acc = FloatVector(repeating: 0)
    var j = 0
    while j + 8 <= n {
        let e = vexp(UnsafeRawPointer(row + j).loadUnaligned(as: FloatVector.self) - m)
        UnsafeMutableRawPointer(row + j).storeBytes(of: e, as: FloatVector.self)
        acc += e
        j += 8
    }
    if j < n {
        mapVectors(row, row, j..<n) { v in vexp(v - m) }
        for t in j..<n { sum += row[t] }
    }
    sum += acc.sum()
    let inv = 1 / sum
    mapVectors(row, row, 0..<n) { v in v * inv }
}

@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var vm = FloatVector(repeating: -.infinity)
    var j = 0
    while j + 8 <= n {
        let v = UnsafeRawPointer(row + j).loadUnaligned(as: FloatVector.self)
        vm.replace(with: v, where: v .> vm)
        j += 8
    }
    while j < n {
        m = Swift.max(m, row[j])
        j += 1
    }
    return Swift.max(m, vm.max())
}
