import Core
import Foundation

/// Job ids cancelled through `darkroom.control`. A cancel may arrive before the job reaches
/// this worker (it is still in the broker queue), while it waits in the batcher, or while it
/// runs; the id is remembered for `ttl` so each of those paths sees it. Bounded in size.
public final class Cancellations: Sendable {
    private let entries = Locked<[String: Date]>([:])
    private let ttl: TimeInterval
    private let capacity: Int

    public init(ttl: TimeInterval = 3600, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    public func cancel(_ id: String, now: Date = Date()) {
        entries.withLock { entries in
            entries[id] = now
            if entries.count > capacity {
                let cutoff = now.addingTimeInterval(-ttl)
                entries = entries.filter { $0.value > cutoff }
                if entries.count > capacity {
                    for (k, _) in entries.sorted(by: { $0.value < $1.value }).prefix(entries.count - capacity) {
                        entries[k] = nil
                    }
                }
            }
        }
    }

    public func isCancelled(_ id: String, now: Date = Date()) -> Bool {
        entries.withLock { entries in
            guard let at = entries[id] else { return false }
            if now.timeIntervalSince(at) > ttl { entries[id] = nil; return false }
            return true
        }
    }
}
