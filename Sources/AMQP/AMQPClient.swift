// The daemon-facing client: Sendable, used from any thread or task. One internal I/O thread owns the
// Connection and never blocks for long, so heartbeats keep flowing whatever the callers do
// (docs/engine.md §7.1, item 11, the "worker" shape). Callers' requests are queued, run on that thread, and
// answered through continuations.
import Core
import Foundation

public final class AMQPClient: Sendable {
    public let settings: ClientSettings
    private let logger: @Sendable (String) -> Void
    private let stateChanged: @Sendable (ClientState) -> Void
    private let inbox = Locked(Inbox())
    private let wake = WakePipe()

    /// `logger` and `stateChanged` are called on the I/O thread; keep them short and non-blocking.
    public init(settings: ClientSettings, logger: @escaping @Sendable (String) -> Void = { _ in },
                stateChanged: @escaping @Sendable (ClientState) -> Void = { _ in }) {
        self.settings = settings
        self.logger = logger
        self.stateChanged = stateChanged
    }

    deinit {
        // Without close(), the I/O thread still holds the inbox and wake pipe; ask it to stop.
        let running = inbox.withLock { box -> Bool in
            guard box.phase == .running else { return false }
            box.phase = .stopping
            return true
        }
        if running { wake.signal() }
    }

    /// Starts the I/O thread and connects, trying each URI in order once. Throws the connect error
    /// (`.allServersFailed` listing each URI's when there are several); the client can be started again.
    public func start() async throws {
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, any Error>) in
            let ok = inbox.withLock { box -> Bool in
                guard box.phase == .idle else { return false }
                box.phase = .running
                return true
            }
            guard ok else {
                started.resume(throwing: AMQPError.alreadyStarted)
                return
            }
            let context = IOLoop.Context(settings: settings, logger: logger, stateChanged: stateChanged,
                                         inbox: inbox, wake: wake)
            let thread = Thread {
                IOLoop(context).run(started: started)
            }
            thread.name = "amqp-io"
            thread.start()
        }
    }

    /// Runs what was already asked (acks, publishes), waits up to 5 s for outstanding publisher confirms,
    /// then closes the connection (unacked deliveries are requeued by the broker), fails whatever is
    /// still pending with `.clientClosed`, and stops the I/O thread.
    public func close() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let now = inbox.withLock { box -> Bool in
                switch box.phase {
                case .idle, .stopped:
                    box.phase = .stopped
                    return true
                case .running, .stopping:
                    box.phase = .stopping
                    box.closeWaiters.append(done)
                    return false
                }
            }
            if now { done.resume() } else { wake.signal() }
        }
    }

    /// True while a connection is up.
    public var isConnected: Bool { inbox.withLock { $0.connected } }

    // MARK: - topology

    public func declareExchange(name: String, type: String = "direct", durable: Bool = true, autoDelete: Bool = false,
                                internal isInternal: Bool = false, arguments: FieldTable = [:]) async throws {
        try await perform { loop in
            try loop.control { c, ch in
                try c.declareExchange(channel: ch, name: name, type: type, durable: durable, autoDelete: autoDelete,
                                      internal: isInternal, arguments: arguments)
            }
        }
    }

    public func deleteExchange(name: String, ifUnused: Bool = false) async throws {
        try await perform { loop in try loop.control { c, ch in try c.deleteExchange(channel: ch, name: name, ifUnused: ifUnused) } }
    }

    /// Declares a queue (a different type or arguments than the existing queue's give
    /// `.channelClosed(code: 406, ...)`). An exclusive queue lives as long as this connection.
    public func declareQueue(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                             arguments: FieldTable = [:]) async throws -> QueueInfo {
        try await perform { loop in
            try loop.control { c, ch in
                try c.declareQueue(channel: ch, name: name, durable: durable, exclusive: exclusive,
                                   autoDelete: autoDelete, arguments: arguments)
            }
        }
    }

    /// Passive declare: ready-message and consumer counts; `.channelClosed(code: 404, ...)` if it does not exist.
    public func queueInfo(name: String) async throws -> QueueInfo {
        try await perform { loop in try loop.control { c, ch in try c.declareQueue(channel: ch, name: name, passive: true) } }
    }

    public func bind(queue: String, exchange: String, routingKey: String, arguments: FieldTable = [:]) async throws {
        try await perform { loop in
            try loop.control { c, ch in
                try c.bindQueue(channel: ch, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
            }
        }
    }

    public func unbind(queue: String, exchange: String, routingKey: String, arguments: FieldTable = [:]) async throws {
        try await perform { loop in
            try loop.control { c, ch in
                try c.unbindQueue(channel: ch, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
            }
        }
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func deleteQueue(name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> UInt32 {
        try await perform { loop in
            try loop.control { c, ch in try c.deleteQueue(channel: ch, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty) }
        }
    }

    @discardableResult
    public func purgeQueue(name: String) async throws -> UInt32 {
        try await perform { loop in try loop.control { c, ch in try c.purgeQueue(channel: ch, name: name) } }
    }

    // MARK: - messages

    /// Publishes and waits for the broker's confirm. Fails with a retryable `.connectionLost` if the
    /// connection drops first, `.notConnected` while reconnecting, `.channelClosed` if the broker refuses
    /// the publish itself (e.g. 404 no such exchange).
    public func publish(exchange: String, routingKey: String, body: [UInt8],
                        properties: MessageProperties = MessageProperties(), mandatory: Bool = false) async throws -> PublishOutcome {
        try await withCheckedThrowingContinuation { (outcome: CheckedContinuation<PublishOutcome, any Error>) in
            submit({ loop in
                loop.publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties,
                             mandatory: mandatory) { outcome.resume(with: $0) }
            }, orFail: { outcome.resume(throwing: $0) })
        }
    }

    /// Starts a consumer on its own channel with basic.qos(prefetch) and manual acks. `handler` runs on a
    /// serial queue of this consumer, never on the I/O thread: blocking in it delays only this consumer's
    /// next deliveries, never heartbeats. After a reconnect the consumer is re-established by itself.
    public func consume(queue: String, prefetch: UInt16,
                        handler: @escaping @Sendable (Delivery) -> Void) async throws -> ConsumerToken {
        try await perform { loop in try loop.consume(queue: queue, prefetch: prefetch, handler: handler) }
    }

    /// Like `consume`, on a server-named, exclusive, auto-delete queue with `bindings`, declared and bound
    /// again on every subscribe: such a queue is gone after a reconnect (or a broker restart), and
    /// re-subscribing to its old name would find nothing (404) and nothing bound.
    public func consumeOwnQueue(label: String, bindings: [QueueBinding], prefetch: UInt16,
                                handler: @escaping @Sendable (Delivery) -> Void) async throws -> ConsumerToken {
        try await perform { loop in try loop.consume(queue: label, ownQueue: bindings, prefetch: prefetch, handler: handler) }
    }

    /// Stops deliveries to the consumer. Deliveries already handed out can still be acked; the channel
    /// closes once they are all settled.
    public func cancel(_ token: ConsumerToken) async throws {
        try await perform { loop in try loop.cancel(token) }
    }

    /// `.staleDelivery` if the delivery's channel or connection has closed since (the broker requeued it).
    public func ack(_ delivery: Delivery) async throws {
        try await perform { loop in try loop.settle(delivery) { c in try c.ack(delivery) } }
    }

    public func nack(_ delivery: Delivery, requeue: Bool) async throws {
        try await perform { loop in try loop.settle(delivery) { c in try c.nack(delivery, requeue: requeue) } }
    }

    public func reject(_ delivery: Delivery, requeue: Bool) async throws {
        try await perform { loop in try loop.settle(delivery) { c in try c.reject(delivery, requeue: requeue) } }
    }

    // MARK: - completion-handler forms (for synchronous code such as a delivery handler)
    // Queued in call order like the async forms; `completion` runs on the I/O thread (keep it short).

    public func publish(exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties = MessageProperties(),
                        mandatory: Bool = false, completion: @escaping @Sendable (Result<PublishOutcome, AMQPError>) -> Void) {
        submit({ loop in
            loop.publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: mandatory) {
                completion($0.mapError(AMQPClient.amqpError))
            }
        }, orFail: { completion(.failure($0)) })
    }

    public func ack(_ delivery: Delivery, completion: (@Sendable (Result<Void, AMQPError>) -> Void)?) {
        settle(delivery, completion) { c in try c.ack(delivery) }
    }

    public func nack(_ delivery: Delivery, requeue: Bool, completion: (@Sendable (Result<Void, AMQPError>) -> Void)?) {
        settle(delivery, completion) { c in try c.nack(delivery, requeue: requeue) }
    }

    public func reject(_ delivery: Delivery, requeue: Bool, completion: (@Sendable (Result<Void, AMQPError>) -> Void)?) {
        settle(delivery, completion) { c in try c.reject(delivery, requeue: requeue) }
    }

    private func settle(_ delivery: Delivery, _ completion: (@Sendable (Result<Void, AMQPError>) -> Void)?,
                        _ op: @escaping @Sendable (Connection) throws -> Void) {
        submit({ loop in
            completion?(Result { try loop.settle(delivery, op) }.mapError(AMQPClient.amqpError))
        }, orFail: { completion?(.failure($0)) })
    }

    private static func amqpError(_ error: any Error) -> AMQPError {
        (error as? AMQPError) ?? .protocolError("\(error)")
    }

    // MARK: - plumbing

    private func submit(_ run: @escaping @Sendable (IOLoop) -> Void, orFail fail: @escaping @Sendable (AMQPError) -> Void) {
        let accepted = inbox.withLock { box -> Bool in
            guard box.phase == .running else { return false }
            box.commands.append(Command(run: run, fail: fail))
            return true
        }
        if accepted { wake.signal() } else { fail(.clientClosed) }
    }

    private func perform<T: Sendable>(_ body: @escaping @Sendable (IOLoop) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (result: CheckedContinuation<T, any Error>) in
            submit({ loop in result.resume(with: Result { try body(loop) }) }, orFail: { result.resume(throwing: $0) })
        }
    }
}

struct Command: Sendable {
    let run: @Sendable (IOLoop) -> Void
    let fail: @Sendable (AMQPError) -> Void
}

struct Inbox {
    enum Phase { case idle, running, stopping, stopped }
    var phase: Phase = .idle
    var commands: [Command] = []
    var connected = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
}
