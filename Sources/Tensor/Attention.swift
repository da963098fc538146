import COpenBLAS
import Foundation

/// Multi-head scaled dot-product attention, no mask (torch SDPA default scale 1/sqrt(D);
/// attention_processor.py AttnProcessor2_0). Head h owns features h·D ..< (h+1)·D of every row, so
/// q, k, v and o are read and written in place through row strides — no head split copies.
/// Per (item, head): `S = (Q_h·K_hᵀ)/sqrt(D)` by sgemm, a numerically stable row softmax
/// (max-subtracted), then `O_h = S·V_h` by sgemm.
///
/// Many small (item, head) problems run in parallel, one per scratch slot, with single-threaded sgemm
/// (OpenBLAS's own threads are switched to 1 for the duration, process-wide, under `blasThreads` held
/// exclusively so no other thread's sgemm runs meanwhile, and restored); a single big
/// problem (the VAE's one head) runs with threaded sgemm and a parallel softmax. `scratch` holds scores:
/// at least `keyTokens` floats; `heads·queryTokens·keyTokens` lets every head have a full slot. With less,
/// query rows are processed in chunks.
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
    let alpha = Float(1 / Double(d).squareRoot())
    let problems = batch * heads
    let slots = max(1, min(problems, kernelThreads * 4, scratchCount / (nk * min(nq, 64))))

    // One (item, head) problem, query rows in chunks that fit `slotCount` floats of scores.
    // `switched`: inside `blasThreads.singleThreaded`, so the calls skip the shared lock.
    func solve(_ problem: Int, _ scores: UnsafeMutablePointer<Float>, _ slotCount: Int, parallelSoftmax: Bool, switched: Bool) {
        let gemm = switched ? sgemmAsSwitched : sgemm
        let b = problem / heads, h = problem % heads
        let rowsPerPass = max(1, min(nq, slotCount / nk))
        var r0 = 0
        while r0 < nq {
            let rows = min(rowsPerPass, nq - r0)
            gemm(false, true, rows, nk, d, alpha,
                 q + (b * nq + r0) * ldq + h * d, ldq, k + b * nk * ldk + h * d, ldk,
                 0, scores, nk)
            if let keyBias {
                let bias = keyBias + b * nk
                for r in 0..<rows {
                    let row = scores + r * nk
                    for j in 0..<nk { row[j] += bias[j] }
                }
            }
            if parallelSoftmax {
                softmaxRows(scores, rows: rows, columns: nk)
            } else {
                for r in 0..<rows { softmaxRow(scores + r * nk, nk) }
            }
            gemm(false, false, rows, d, nk, 1,
                 scores, nk, v + b * nk * ldv + h * d, ldv,
                 0, o + (b * nq + r0) * ldo + h * d, ldo)
            r0 += rows
        }
    }

    if slots == 1 || kernelThreads == 1 {
        for problem in 0..<problems { solve(problem, scratch, scratchCount, parallelSoftmax: true, switched: false) }
        return
    }
    let slotCount = scratchCount / slots
    blasThreads.singleThreaded {
        parallelFor(slots) { range in
            for slot in range {
                var problem = slot
                while problem < problems {
                    solve(problem, scratch + slot * slotCount, slotCount, parallelSoftmax: false, switched: true)
                    problem += slots
                }
            }
        }
    }
}

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
