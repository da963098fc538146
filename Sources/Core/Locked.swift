// The one lock type: a value behind a mutex, reached only through `withLock`.
import Foundation

/// A value shared between threads. Every read and write goes through `withLock`, so no caller can touch the
/// value without holding the lock, and no lock is held across an `await`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { stored = value }

    /// Runs `body` with exclusive access to the value.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&stored)
    }

    /// A copy of the value.
    public var value: Value { withLock { $0 } }
}
