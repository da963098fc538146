/// Linear layer as one sgemm over all rows (torch `Linear`: weight `[out, in]`, `y = x·Wᵀ + b`).
/// With `accumulate`, adds into `y` instead (`y += x·Wᵀ + b`).
// x: [M, K], w: [O, K], b: [O]? -> y: [M, O]
public func linear(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
    _ b: UnsafePointer<Float>?, rows m: Int, inFeatures k: Int, outFeatures o: Int, accumulate: Bool = false
) {
    guard m > 0, o > 0 else { return }
    var beta: Float = accumulate ? 1 : 0
    if let b {
        parallelFor(m, grain: max(1, 16_384 / o)) { rows in
            for r in rows {
                let yr = y + r * o
                if accumulate {
                    for j in 0..<o { yr[j] += b[j] }
                } else {
                    yr.update(from: b, count: o)
                }
            }
        }
        beta = 1
    }
    sgemm(transA: false, transB: true, m: m, n: o, k: k, alpha: 1, x, lda: k, w, ldb: k, beta: beta, y, ldc: o)
}
