/// Groups compatible jobs into engine batches: the batcher role.
///
/// Jobs are grouped by (class, compatibility key). A group is ready when it holds
/// `maxBatch` jobs or its oldest job has waited `window`; a lone job therefore waits at
/// most the window. Among ready groups the batcher picks the class that has been served
/// least relative to its weight (so one busy class cannot starve another), and within a
/// class the group whose oldest job is oldest. A ready group larger than `maxBatch` is cut,
/// oldest first. The batcher is a plain value with time passed in, so it is tested as such.
public struct Batcher<Item: Sendable>: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxBatch: Int
        public var windowMs: Int
        public var weight: Int
        public init(maxBatch: Int, windowMs: Int, weight: Int = 1) {
            self.maxBatch = max(1, maxBatch)
            self.windowMs = max(0, windowMs)
            self.weight = max(1, weight)
        }
    }

    public struct Batch: Sendable {
        public let className: String
        public let key: String
        public let items: [Item]
    }

    struct Entry: Sendable {
        let item: Item
        let arrivedMs: Int64
        let seq: Int
    }

    private var limits: [String: Limits]
    private var groups: [String: [String: [Entry]]] = [:]   // class -> key -> entries (arrival order)
    private var served: [String: Double] = [:]                // class -> batches served / weight
    private var seq = 0

    public init(limits: [String: Limits]) {
        self.limits = limits
    }

    /// New limits (SIGHUP); queued jobs stay where they are.
    public mutating func update(limits: [String: Limits]) {
        self.limits = limits
    }

    public var count: Int { groups.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } } }

    public mutating func add(_ item: Item, className: String, key: String, nowMs: Int64) {
        seq += 1
        groups[className, default: [:]][key, default: []].append(Entry(item: item, arrivedMs: nowMs, seq: seq))
    }

    /// Removes and returns every queued item matching `predicate` (cancellation, shutdown).
    public mutating func remove(where predicate: (Item) -> Bool) -> [Item] {
        var removed: [Item] = []
        for (cls, byKey) in groups {
            for (key, entries) in byKey {
                let (out, keep) = entries.reduce(into: ([Item](), [Entry]())) { acc, e in
                    if predicate(e.item) { acc.0.append(e.item) } else { acc.1.append(e) }
                }
                removed += out
                groups[cls]![key] = keep.isEmpty ? nil : keep
            }
            if groups[cls]!.isEmpty { groups[cls] = nil }
        }
        return removed
    }

    /// The next batch to run at `nowMs`, if one is ready.
    public mutating func next(nowMs: Int64) -> Batch? {
        var best: (cls: String, key: String, served: Double, oldest: Int)?
        for (cls, byKey) in groups {
            let lim = limits[cls] ?? Limits(maxBatch: 1, windowMs: 0)
            for (key, entries) in byKey {
                guard let first = entries.first else { continue }
                let ready = entries.count >= lim.maxBatch || nowMs - first.arrivedMs >= Int64(lim.windowMs)
                guard ready else { continue }
                let s = served[cls, default: 0]
                if let b = best, (b.served, b.oldest) <= (s, first.seq) { continue }
                best = (cls, key, s, first.seq)
            }
        }
        guard let pick = best, let entries = groups[pick.cls]?[pick.key] else { return nil }
        let lim = limits[pick.cls] ?? Limits(maxBatch: 1, windowMs: 0)
        let take = Array(entries.prefix(lim.maxBatch))
        let rest = Array(entries.dropFirst(lim.maxBatch))
        groups[pick.cls]![pick.key] = rest.isEmpty ? nil : rest
        if groups[pick.cls]!.isEmpty { groups[pick.cls] = nil }
        // Keep the fairness clock of idle classes from lagging far behind (no burst after idling).
        let floor = served.values.min() ?? 0
        served[pick.cls] = max(served[pick.cls, default: floor], floor) + 1.0 / Double(lim.weight)
        return Batch(className: pick.cls, key: pick.key, items: take.map(\.item))
    }

    /// Milliseconds until the earliest group becomes ready (nil when nothing is queued).
    public func msUntilReady(nowMs: Int64) -> Int64? {
        var soonest: Int64?
        for (cls, byKey) in groups {
            let lim = limits[cls] ?? Limits(maxBatch: 1, windowMs: 0)
            for entries in byKey.values {
                guard let first = entries.first else { continue }
                let wait = entries.count >= lim.maxBatch ? 0 : max(0, first.arrivedMs + Int64(lim.windowMs) - nowMs)
                soonest = min(soonest ?? wait, wait)
            }
        }
        return soonest
    }
}
