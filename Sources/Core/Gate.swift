// A one-shot event to wait on: opened once, after which every waiter (present and future) goes on.
// For "the worker is serving", "the process exited": what a caller or a test awaits instead of sleeping.

public final class Gate: Sendable {
    private struct State {
        var open = false
        var next = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
    }
    private let state = Locked(State())

    public init() {}

    /// Opens the gate and resumes everyone waiting; later calls do nothing.
    public func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.open else { return [] }
            s.open = true
            defer { s.waiters = [:]; s.cancelled = [] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    public var isOpen: Bool { state.withLock { $0.open } }

    /// Returns once the gate is open, or when the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { s -> Int in s.next += 1; return s.next }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.open || s.cancelled.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let c = s.waiters.removeValue(forKey: id) { return c }
                if !s.open { s.cancelled.insert(id) }
                return nil
            }
            c?.resume()
        }
    }

    /// Whether the gate opened within `timeout`.
    public func wait(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return isOpen
    }
}
