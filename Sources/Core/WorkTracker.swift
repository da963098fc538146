/// Work the daemon starts from synchronous code (a delivery handler, a publish confirm) that must end
/// before it stops: acks, requeues, answers. Each piece runs as a task registered here until it ends, so
/// nothing is fire-and-forget: `waitAll` returns once every piece (and every piece they started) is done.
public final class WorkTracker: Sendable {
    public init() {}

    private let state = Locked<(next: UInt64, tasks: [UInt64: Task<Void, Never>])>((0, [:]))

    /// Runs `body` as tracked work.
    public func run(_ body: @escaping @Sendable () async -> Void) {
        state.withLock { s in
            let id = s.next
            s.next += 1
            // Registered under the lock, so the task cannot remove itself before it is added.
            s.tasks[id] = Task { [state] in
                await body()
                state.withLock { _ = $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    /// Pieces still running.
    public var count: Int { state.withLock { $0.tasks.count } }

    /// Cancels every piece still running (each sees `Task.isCancelled` and its sleeps end early).
    public func cancelAll() {
        for t in state.withLock({ Array($0.tasks.values) }) { t.cancel() }
    }

    /// Waits until no piece is running, including pieces started meanwhile.
    public func waitAll() async {
        while true {
            let tasks = state.withLock { Array($0.tasks.values) }
            if tasks.isEmpty { return }
            for t in tasks { await t.value }
        }
    }
}
