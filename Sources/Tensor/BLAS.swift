import COpenBLAS

/// Row-major single-precision GEMM: `C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C`,
/// with leading dimensions (row strides) `lda`, `ldb`, `ldc`. A thin typed wrapper over
/// `cblas_sgemm`, so the kernels read with Swift `Int`s.
@inline(__always)
public func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// Threads OpenBLAS currently uses for one call (OPENBLAS_NUM_THREADS or the core count).
public var blasThreadCount: Int { Int(openblas_get_num_threads()) }
