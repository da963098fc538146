import Dispatch
import Foundation

/// Threads that the non-BLAS loops split their work over (one per online core).
public let kernelThreads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Runs `body` over `0..<count` split into contiguous ranges, spread over the cores.
/// Ranges hold at least `grain` items (except when `count` is smaller), so tiny loops stay
/// on the calling thread. A few ranges per core balance the load when a core is busy.
@inlinable
public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = min(kernelThreads * 4, max(1, count / max(grain, 1)))
    if chunks <= 1 || kernelThreads == 1 {
        body(0..<count)
        return
    }
    // The ranges are disjoint and `concurrentPerform` returns only when all are done, so handing the
    // caller's (non-Sendable, pointer-capturing) closure to the worker threads is safe.
    withoutActuallyEscaping(body) { body in
        let work = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            work.value((count * i / chunks)..<(count * (i + 1) / chunks))
        }
    }
}

@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}
