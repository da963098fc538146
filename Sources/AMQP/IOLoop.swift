// The AMQPClient's I/O thread: owns the Connection, runs queued commands, pumps frames (heartbeats
// included) at least every 200 ms, tracks publisher confirms, dispatches deliveries, and reconnects
// with capped exponential backoff.
import Core
import Foundation

final class IOLoop {
    struct Context: Sendable {
        let settings: ClientSettings
        let logger: @Sendable (String) -> Void
        let stateChanged: @Sendable (ClientState) -> Void
        let inbox: Locked<Inbox>
        let wake: WakePipe
    }

    private struct PendingPublish {
        let done: @Sendable (Result<PublishOutcome, any Error>) -> Void
        let exchange: String
        let routingKey: String
        let body: [UInt8]
        var returned: PublishOutcome?
    }

    private final class Consumer {
        let token: ConsumerToken
        let prefetch: UInt16
        let handler: @Sendable (Delivery) -> Void
        let dispatch: DispatchQueue
        /// For a queue of the consumer's own (server-named, exclusive, auto-delete): its bindings. Such a
        /// queue dies with its connection (or its consumer), so it is declared and bound on every subscribe.
        let ownQueue: [QueueBinding]?
        /// The queue consumed now (a server-named queue gets a new name on every subscribe).
        var queue: String
        var tag: String
        var channel: UInt16?
        var cancelled = false
        var outstanding = Set<UInt64>()
        /// Set while the consumer is down on a live connection: failed subscribes so far and the next try.
        var retry: (failures: Int, at: ContinuousClock.Instant)?

        init(token: ConsumerToken, prefetch: UInt16, ownQueue: [QueueBinding]?, handler: @escaping @Sendable (Delivery) -> Void) {
            self.token = token
            self.prefetch = prefetch
            self.handler = handler
            self.ownQueue = ownQueue
            self.queue = token.queue
            self.dispatch = DispatchQueue(label: "amqp-consumer-\(token.id)")
            self.tag = "darkroom-\(ProcessInfo.processInfo.processIdentifier)-\(token.id)"
        }
    }

    private let ctx: Context
    private var conn: Connection?
    private var controlChannel: UInt16?
    private var publishChannel: UInt16?
    private var pending: [UInt64: PendingPublish] = [:]
    private var consumers: [UInt64: Consumer] = [:]
    private var consumerByChannel: [UInt16: UInt64] = [:]
    private var nextConsumerID: UInt64 = 0
    private var attempt = 0
    private var nextAttempt: ContinuousClock.Instant?

    init(_ ctx: Context) { self.ctx = ctx }

    // MARK: - the loop

    func run(started: CheckedContinuation<Void, any Error>) {
        do {
            try connect()
        } catch {
            let waiters = ctx.inbox.withLock { box -> [CheckedContinuation<Void, Never>] in
                box.phase = box.phase == .stopping ? .stopped : .idle
                defer { box.closeWaiters = [] }
                return box.closeWaiters
            }
            failQueuedCommands(.clientClosed)
            started.resume(throwing: error)
            for w in waiters { w.resume() }
            return
        }
        started.resume()
        while true {
            if ctx.inbox.withLock({ $0.phase == .stopping }) {
                runCommands()  // what was asked before close() still happens (a last ack, a last publish)
                drainConfirms(within: .seconds(5))
                shutdown()
                return
            }
            runCommands()
            if let c = conn {
                retryConsumers()
                pump(c)
            } else {
                waitOrReconnect()
            }
        }
    }

    private func runCommands() {
        let commands = ctx.inbox.withLock { box -> [Command] in
            defer { box.commands = [] }
            return box.commands
        }
        for command in commands {
            command.run(self)
            checkConnection()
        }
    }

    private func failQueuedCommands(_ error: AMQPError) {
        let commands = ctx.inbox.withLock { box -> [Command] in
            defer { box.commands = [] }
            return box.commands
        }
        for command in commands { command.fail(error) }
    }

    /// Waits (at most 200 ms) for the socket or a new command, then handles every frame that is ready.
    private func pump(_ c: Connection) {
        if !c.hasBufferedInput {
            ctx.wake.wait(also: c.socketDescriptor, milliseconds: 200)
        }
        ctx.wake.drain()
        do {
            for _ in 0..<512 {
                guard let event = try c.nextEvent(timeout: .milliseconds(1)) else { break }
                handle(event)
                if conn == nil { return }
            }
        } catch {
            // nextEvent only throws when the connection is finished
        }
        checkConnection()
    }

    /// Before closing: keep pumping until every publish has its confirm, or `limit` passes.
    private func drainConfirms(within limit: Duration) {
        let deadline = ContinuousClock.now + limit
        while !pending.isEmpty, let c = conn, ContinuousClock.now < deadline {
            pump(c)
        }
    }

    private func checkConnection() {
        if let c = conn, let failure = c.failure { lost(failure) }
    }

    private func shutdown() {
        let closed = AMQPError.clientClosed
        failPending(closed)
        conn?.close()
        conn = nil
        consumers = [:]
        consumerByChannel = [:]
        let waiters = ctx.inbox.withLock { box -> [CheckedContinuation<Void, Never>] in
            box.phase = .stopped
            box.connected = false
            defer { box.closeWaiters = [] }
            return box.closeWaiters
        }
        failQueuedCommands(closed)
        ctx.stateChanged(.closed)
        for w in waiters { w.resume() }
    }

    // MARK: - connecting

    /// Tries each URI once, in order.
    private func connect() throws {
        var errors: [AMQPError] = []
        for uri in ctx.settings.uris {
            do {
                let c = try Connection(uri: uri, connectionName: ctx.settings.connectionName,
                                       rpcTimeout: ctx.settings.rpcTimeout)
                conn = c
                ctx.inbox.withLock { $0.connected = true }
                ctx.logger("connected to \(uri) (heartbeat \(c.heartbeat) s, frame_max \(c.frameMax))")
                ctx.stateChanged(.connected(server: uri.description))
                return
            } catch {
                let e = (error as? AMQPError) ?? .connectFailed(server: uri.server, reason: "\(error)")
                ctx.logger("cannot connect to \(uri): \(e)")
                errors.append(e)
            }
        }
        if errors.count == 1 { throw errors[0] }
        if errors.isEmpty { throw AMQPError.invalidArgument("no broker URI configured") }
        throw AMQPError.allServersFailed(errors)
    }

    private func lost(_ error: AMQPError) {
        ctx.logger("connection lost: \(error)")
        conn = nil
        controlChannel = nil
        publishChannel = nil
        ctx.inbox.withLock { $0.connected = false }
        failPending(.connectionLost(reason: error.description))
        for (id, consumer) in consumers {
            consumer.channel = nil
            consumer.outstanding = []
            if consumer.cancelled { consumers[id] = nil }
        }
        consumerByChannel = [:]
        ctx.stateChanged(.disconnected(error))
        attempt = 0
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        let s = ctx.settings
        let base = s.reconnectInitialDelay * (1 << min(attempt, 20))
        let capped = min(base, s.reconnectMaxDelay)
        let delay = min(capped * Double.random(in: 0.8...1.2), s.reconnectMaxDelay)
        attempt += 1
        nextAttempt = .now + delay
        ctx.logger("reconnect attempt \(attempt) in \(delay)")
        ctx.stateChanged(.reconnecting(attempt: attempt, delay: delay))
    }

    private func waitOrReconnect() {
        if let at = nextAttempt, at > .now {
            let left = min((at - .now).milliseconds, 200)
            ctx.wake.wait(also: -1, milliseconds: Int32(max(left, 1)))
            ctx.wake.drain()
            return
        }
        do {
            try connect()
        } catch {
            scheduleReconnect()
            return
        }
        nextAttempt = nil
        attempt = 0
        for consumer in consumers.values.sorted(by: { $0.token.id < $1.token.id }) where !consumer.cancelled {
            consumer.retry = nil
            do {
                try subscribe(consumer)
                ctx.logger("consumer on '\(consumer.queue)' re-established")
            } catch {
                guard conn?.failure == nil else { checkConnection(); return }
                consumerDown(consumer, error)
            }
        }
    }

    /// A consumer the broker dropped (or refused) while the connection lives: report it and try again
    /// with capped exponential backoff, never give up on it.
    private func consumerDown(_ consumer: Consumer, _ error: any Error) {
        if let ch = consumer.channel { consumerByChannel[ch] = nil }
        consumer.channel = nil
        consumer.outstanding = []
        let failures = (consumer.retry?.failures ?? 0) + 1
        let s = ctx.settings
        let delay = min(s.reconnectInitialDelay * (1 << min(failures - 1, 20)), s.reconnectMaxDelay)
        consumer.retry = (failures, .now + delay)
        ctx.stateChanged(.consumerDown(queue: consumer.queue, reason: "\(error)", retryIn: delay))
    }

    /// Subscribes again the consumers whose retry time has come.
    private func retryConsumers() {
        let now = ContinuousClock.now
        for consumer in consumers.values.sorted(by: { $0.token.id < $1.token.id }) {
            guard !consumer.cancelled, let retry = consumer.retry, retry.at <= now else { continue }
            do {
                try subscribe(consumer)
                consumer.retry = nil
                ctx.stateChanged(.consumerUp(queue: consumer.queue))
            } catch {
                guard conn?.failure == nil else { checkConnection(); return }
                consumerDown(consumer, error)
            }
        }
    }

    // MARK: - commands (run on this thread)

    func connection() throws -> Connection {
        guard let c = conn, c.isOpen else { throw AMQPError.notConnected }
        return c
    }

    /// Runs an RPC on the shared control channel, opening it if needed (a broker channel error closes it).
    func control<T>(_ body: (Connection, UInt16) throws -> T) throws -> T {
        let c = try connection()
        if let ch = controlChannel, !c.isChannelOpen(ch) { controlChannel = nil }
        let ch = try controlChannel ?? c.openChannel()
        controlChannel = ch
        return try body(c, ch)
    }

    func publish(exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties, mandatory: Bool,
                 done: @escaping @Sendable (Result<PublishOutcome, any Error>) -> Void) {
        do {
            let c = try connection()
            if let ch = publishChannel, !c.isChannelOpen(ch) { publishChannel = nil }
            let ch: UInt16
            if let open = publishChannel {
                ch = open
            } else {
                ch = try c.openChannel()
                publishChannel = ch
                try c.confirmSelect(channel: ch)
            }
            let seq = try c.publish(channel: ch, exchange: exchange, routingKey: routingKey, body: body,
                                    properties: properties, mandatory: mandatory)
            pending[seq] = PendingPublish(done: done, exchange: exchange, routingKey: routingKey, body: body)
        } catch {
            done(.failure(error))
        }
    }

    /// `ownQueue`: consume a server-named exclusive auto-delete queue with these bindings, declared anew on
    /// every subscribe (`queue` is then only a label).
    func consume(queue: String, ownQueue: [QueueBinding]? = nil, prefetch: UInt16,
                 handler: @escaping @Sendable (Delivery) -> Void) throws -> ConsumerToken {
        _ = try connection()
        nextConsumerID += 1
        let consumer = Consumer(token: ConsumerToken(id: nextConsumerID, queue: queue), prefetch: prefetch,
                                ownQueue: ownQueue, handler: handler)
        try subscribe(consumer)
        consumers[consumer.token.id] = consumer
        return consumer.token
    }

    private func subscribe(_ consumer: Consumer) throws {
        let c = try connection()
        let ch = try c.openChannel()
        do {
            try c.qos(channel: ch, prefetchCount: consumer.prefetch)
            try startConsuming(consumer, c, ch)
        } catch {
            if c.isChannelOpen(ch) { try? c.closeChannel(ch) }
            throw error
        }
        consumer.channel = ch
        consumer.outstanding = []
        consumerByChannel[ch] = consumer.token.id
    }

    /// basic.consume on `ch`, after declaring and binding the consumer's own queue if it has one.
    private func startConsuming(_ consumer: Consumer, _ c: Connection, _ ch: UInt16) throws {
        if let bindings = consumer.ownQueue {
            let info = try c.declareQueue(channel: ch, name: "", durable: false, exclusive: true, autoDelete: true)
            for b in bindings {
                try c.bindQueue(channel: ch, queue: info.name, exchange: b.exchange, routingKey: b.routingKey)
            }
            consumer.queue = info.name
        }
        consumer.tag = try c.consume(channel: ch, queue: consumer.queue, consumerTag: consumer.tag)
    }

    func cancel(_ token: ConsumerToken) throws {
        guard let consumer = consumers[token.id], !consumer.cancelled else { return }
        consumer.cancelled = true
        guard let ch = consumer.channel, let c = conn, c.isChannelOpen(ch) else {
            consumers[token.id] = nil
            return
        }
        try c.cancel(channel: ch, consumerTag: consumer.tag)
        closeIfDone(consumer)
    }

    func settle(_ delivery: Delivery, _ op: (Connection) throws -> Void) throws {
        guard let c = conn, c.owns(delivery) else { throw AMQPError.staleDelivery(deliveryTag: delivery.deliveryTag) }
        try op(c)
        if let id = consumerByChannel[delivery.channel], let consumer = consumers[id] {
            consumer.outstanding.remove(delivery.deliveryTag)
            closeIfDone(consumer)
        }
    }

    private func closeIfDone(_ consumer: Consumer) {
        guard consumer.cancelled, consumer.outstanding.isEmpty else { return }
        consumers[consumer.token.id] = nil
        guard let ch = consumer.channel else { return }
        consumerByChannel[ch] = nil
        consumer.channel = nil
        if let c = conn, c.isChannelOpen(ch) {
            do { try c.closeChannel(ch) } catch { ctx.logger("closing the channel of a cancelled consumer: \(error)") }
        }
    }

    // MARK: - events

    private func handle(_ event: ConnectionEvent) {
        switch event {
        case .delivery(let d):
            guard let id = consumerByChannel[d.channel], let consumer = consumers[id], !consumer.cancelled else {
                // Arrived after a cancel: give it back at once.
                do { try conn?.reject(d, requeue: true) } catch { ctx.logger("requeueing a late delivery: \(error)") }
                return
            }
            consumer.outstanding.insert(d.deliveryTag)
            let handler = consumer.handler
            consumer.dispatch.async { handler(d) }
        case .ack(let ch, let tag, let multiple) where ch == publishChannel:
            resolve(tag: tag, multiple: multiple, acked: true)
        case .nack(let ch, let tag, let multiple) where ch == publishChannel:
            resolve(tag: tag, multiple: multiple, acked: false)
        case .returned(let ch, let m) where ch == publishChannel:
            // Returns come in publish order, just before that message's ack: the first pending publish
            // with the same exchange, routing key and body is the one.
            let match = pending.filter { $0.value.returned == nil && $0.value.exchange == m.exchange
                && $0.value.routingKey == m.routingKey && $0.value.body == m.body }.keys.min()
            if let seq = match { pending[seq]?.returned = .returned(code: m.replyCode, text: m.replyText) }
        case .channelClosed(let ch, let code, let text):
            channelClosed(ch, code: code, text: text)
        case .consumerCancelled(let ch, _):
            guard let id = consumerByChannel[ch], let consumer = consumers[id], !consumer.cancelled else { return }
            ctx.stateChanged(.consumerDown(queue: consumer.queue, reason: "the broker cancelled the consumer", retryIn: .zero))
            guard let c = conn else { return }
            do {
                // Same channel: the deliveries handed out on it can still be acked.
                try startConsuming(consumer, c, ch)
                ctx.stateChanged(.consumerUp(queue: consumer.queue))
            } catch {
                guard c.failure == nil else { return }
                if c.isChannelOpen(ch) { try? c.closeChannel(ch) }
                consumerDown(consumer, error)
            }
        default:
            break
        }
    }

    private func channelClosed(_ ch: UInt16, code: UInt16, text: String) {
        if ch == publishChannel {
            publishChannel = nil
            ctx.logger("the broker closed the publishing channel: \(code) \(text)")
            failPending(.channelClosed(code: code, text: text))
        } else if ch == controlChannel {
            controlChannel = nil
        } else if let id = consumerByChannel.removeValue(forKey: ch), let consumer = consumers[id] {
            consumer.channel = nil
            consumer.outstanding = []
            ctx.logger("the broker closed the channel of the consumer on '\(consumer.queue)': \(code) \(text)")
            if consumer.cancelled {
                consumers[id] = nil
                return
            }
            do {
                try subscribe(consumer)
            } catch {
                guard conn?.failure == nil else { return }
                consumerDown(consumer, error)
            }
        }
    }

    private func resolve(tag: UInt64, multiple: Bool, acked: Bool) {
        let seqs = multiple ? pending.keys.filter { $0 <= tag } : [tag]
        for seq in seqs.sorted() {
            guard let p = pending.removeValue(forKey: seq) else { continue }
            p.done(.success(acked ? (p.returned ?? .acked) : .nacked))
        }
    }

    private func failPending(_ error: AMQPError) {
        let all = pending
        pending = [:]
        for (_, p) in all.sorted(by: { $0.key < $1.key }) { p.done(.failure(error)) }
    }
}

/// A self-pipe that wakes the I/O thread when a command is queued.
final class WakePipe: Sendable {
    private let readFD: Int32
    private let writeFD: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        if readFD >= 0 { Glibc.close(readFD) }
        if writeFD >= 0 { Glibc.close(writeFD) }
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readFD, &buffer, buffer.count) > 0 {}
    }

    /// Waits until the pipe (or `fd`, if not -1) is readable, or `milliseconds` pass.
    func wait(also fd: Int32, milliseconds: Int32) {
        var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)]
        if fd >= 0 { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        _ = poll(&fds, nfds_t(fds.count), milliseconds)
    }
}
