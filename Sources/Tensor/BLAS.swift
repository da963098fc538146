import COpenBLAS

import Foundation

/// Row-major single-precision GEMM: `C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C`,
/// with leading dimensions (row strides) `lda`, `ldb`, `ldc`. A thin typed wrapper over
/// `cblas_sgemm`, so the kernels read with Swift `Int`s.
///
/// OpenBLAS's thread count is process-wide and its sgemm gives different bits at different thread
/// counts (its K blocking depends on it: 1 vs 2 threads differ on every VAE/DiT shape we tried). So
/// each call holds `blasThreads` shared, and parallel-heads attention, which switches OpenBLAS to one
/// thread, holds it exclusively: a call never sees another thread's switch, and an engine's numbers
/// do not depend on what else runs in the process (tests run many engines at once).
@inline(__always)
public func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    blasThreads.shared {
        sgemmAsSwitched(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
                        beta: beta, c, ldc: ldc)
    }
}

/// `sgemm` for code that holds `blasThreads` exclusively (attention's per-head calls): no lock.
@inline(__always)
func sgemmAsSwitched(
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

/// The process-wide OpenBLAS thread count, guarded: `shared` around every sgemm, `singleThreaded` (exclusive)
/// while OpenBLAS is switched to one thread. A pthread read/write lock: readers only wait while a switch
/// is held, which in the worker (one engine thread) never happens concurrently.
final class BLASThreadLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rw = .allocate(capacity: 1)
        pthread_rwlock_init(rw, nil)
    }

    @inline(__always)
    func shared<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }

    /// Runs `body` with OpenBLAS on one thread and no other sgemm running, then restores the count.
    func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(rw)
        let saved = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer {
            openblas_set_num_threads(saved)
            pthread_rwlock_unlock(rw)
        }
        return try body()
    }

    /// Sets the thread count (e.g. `darkroom bench --threads`) once no call is running.
    func set(_ n: Int) {
        pthread_rwlock_wrlock(rw)
        openblas_set_num_threads(Int32(n))
        pthread_rwlock_unlock(rw)
    }
}

let blasThreads = BLASThreadLock()

/// Sets OpenBLAS's thread count for every later call.
public func setBLASThreadCount(_ n: Int) { blasThreads.set(n) }

/// Threads OpenBLAS uses for one call (OPENBLAS_NUM_THREADS or the core count); read under the shared lock,
/// so never the 1 of an attention switch held by another thread.
public var blasThreadCount: Int { blasThreads.shared { Int(openblas_get_num_threads()) } }
