import AMQP
import Config
import Core
import Diffusion
import Foundation
import Jobs
import Logging
import Systemd
import Tensor

/// A job between its delivery and its ack.
struct Pending: Sendable {
    let job: Job
    let delivery: Delivery
    let className: String
    let received: Date
    /// From the AMQP `expiration` property, counted from arrival here.
    let expires: Date?
    /// The stored initial noise (`seed_ref`), one `[C, h, w]` row per stored image.
    let storedNoise: [[Float]]?
    let storedSeed: UInt64?
}

/// `darkroomd`: the launcher. It owns the roles — intake (one consumer per class), the batcher,
/// the engine runner (one thread), the publisher and the acker — and the lifecycle: start,
/// READY, SIGHUP reload, SIGTERM drain. Sidekiq's rule holds throughout: it is worse to lose a
/// job than to run it twice, so a job is acked only after its terminal event was confirmed, and
/// whatever cannot finish before the drain deadline goes back to the queue.
public final class Daemon: @unchecked Sendable {
    let logger: Logger
    let engine: Engine
    let client: AMQPClient
    let publisher: Publisher
    let ledger: Ledger
    /// Finished results whose terminal event is not confirmed yet (answers a redelivery without the engine).
    let results: KeptResults
    let cancels = Cancellations()
    /// Acks, requeues and answers started from handlers and confirms; the drain waits for them.
    let work = WorkTracker()
    let schedules: ScheduleCache<SchedulerTables>
    let seeds: SeedStore
    let notifier: Notifier
    let topology: Topology
    let workerID: String
    /// Counters and histograms for GET /metrics (no-ops unless darkroomd bootstrapped a registry).
    let metrics = WorkerMetrics()
    let startedAt = Date()
    /// Webhooks and result stores.
    let deliveries: Deliveries

    /// Guards everything below; the engine thread waits on it for work.
    let cond = NSCondition()
    var config: DarkroomConfig
    var batcher: Batcher<Pending>
    var consumers: [ConsumerToken] = []
    var stopping = false
    var abortRunning = false
    var engineDone = false
    var runningJobs: Set<String> = []
    /// The batch the engine runs now (nil: idle).
    var currentBatch: ServiceStatus.Batch?
    var done = 0
    var failed = 0
    /// Batches handed to the engine, jobs answered from the results kept on disk (no engine run), and
    /// redelivered jobs acked unanswered because the ledger holds them.
    var batchesStarted = 0
    var answeredFromDisk = 0
    var acknowledgedAsFinished = 0
    var staleSerial: UInt64 = 0
    var maxSerialSeen: UInt64 = 0
    /// Queues whose consumer the broker dropped while the connection lives (retried with backoff).
    var consumersDown: Set<String> = []
    /// True from READY=1 (topology declared, consumers up) until the drain starts: /readyz's "serving".
    var serving = false
    /// Connections made so far (each after the first is a reconnect).
    var connections = 0
    /// Why the state dir cannot be written (the last failed ledger or results write); nil again once the ledger
    /// takes a write. Shown by /readyz, STATUS= and `darkroom_state_dir_writable`.
    var stateProblem: String?
    /// Liveness of the engine loop (beats each step and each idle wait) and the I/O loop (a probe
    /// through the connection): WATCHDOG=1 goes out only while neither has gone quiet.
    /// A class (or the control queue) left without a consumer is a busy "consumers" part that never beats:
    /// after the watchdog interval the pings stop, and systemd restarts the worker, which declares again.
    let liveness: WatchdogMonitor
    /// Opens once the worker serves (consumers up, READY sent), or when `run()` ends without getting there.
    public let started = Gate()
    private var stopSignal: CheckedContinuation<Void, Never>?
    private var stopRequested = false

    /// - notifier: `Notifier(environment:)` from the process's environment under systemd; `.silent` for a
    ///   worker embedded in another process.
    public init(config: DarkroomConfig, engine: Engine, logger: Logger, notifier: Notifier) throws {
        self.notifier = notifier
        self.liveness = WatchdogMonitor(notifier: notifier, parts: ["engine", "io", "consumers"])
        self.config = config
        self.engine = engine
        self.logger = logger
        self.workerID = config.worker.id
        self.topology = config.contractTopology
        self.ledger = try Ledger(directory: config.stateDir + "/ledger")
        self.results = try KeptResults(directory: config.stateDir + "/results")
        self.schedules = try ScheduleCache(directory: config.cacheDir + "/schedules")
        self.seeds = try SeedStore(directory: config.seedsDir)
        self.batcher = Batcher(limits: Self.limits(config))
        metrics.declare(classes: config.consumedClasses.map(\.name), models: engine.models.keys.sorted())
        self.deliveries = try Deliveries(config: config, logger: logger)
        let box = ClientStateBox()
        self.client = AMQPClient(settings: try config.clientSettings(name: "darkroomd \(config.worker.id)"),
                                 logger: { [logger] in logger.debug("\($0)") },
                                 stateChanged: { box.handler?($0) })
        self.publisher = Publisher(client: client)
        box.handler = { [weak self] state in self?.brokerStateChanged(state) }
    }

    static func limits(_ config: DarkroomConfig) -> [String: Batcher<Pending>.Limits] {
        Dictionary(uniqueKeysWithValues: config.classes.map {
            ($0.name, .init(maxBatch: $0.maxBatch, windowMs: $0.batchWindowMs, weight: $0.weight))
        })
    }

    // MARK: - lifecycle

    /// Connects, declares the topology, starts consuming and runs until `stop()`; then drains.
    public func run() async throws {
        defer { started.open() }
        try await connectWithBackoff()
        try await client.declare(topology)
        // Server-named, exclusive, auto-delete: declared and bound again on every connect (the old one died
        // with the old connection).
        _ = try await client.consumeOwnQueue(label: Self.controlLabel, bindings: [QueueBinding(exchange: topology.controlExchange)],
                                             prefetch: 16) { [weak self] d in self?.control(d) }
        let classes = cond.withLock { config.consumedClasses }
        for c in classes {
            let token = try await client.consume(queue: topology.jobQueue(forClass: c.name), prefetch: UInt16(clamping: c.prefetch)) {
                [weak self] d in self?.intake(d, className: c.name)
            }
            cond.withLock { consumers.append(token) }
        }
        let engineThread = Thread { [weak self] in self?.engineLoop() }
        engineThread.name = "engine"
        engineThread.stackSize = 16 << 20
        engineThread.start()
        let watchdog = Task { [weak self] in await self?.watchdogLoop() }

        logger.info("serving", metadata: ["class": "\(classes.map(\.name).joined(separator: ","))",
                                          "model": "\(engine.models.keys.sorted().joined(separator: ","))",
                                          "threads": "\(blasThreadCount)", "event": "ready"])
        cond.withLock { serving = true }
        _ = notifier.ready(status: statusLine(.serving))
        started.open()

        await waitForStop()
        _ = notifier.stopping(status: statusLine(.draining))
        logger.info("stopping: no new jobs, draining the running batch", metadata: ["event": "stopping"])
        await drain()
        watchdog.cancel()
        await publisher.finish()
        await client.close()
        logger.info("stopped", metadata: ["event": "stopped"])
    }

    static let controlLabel = "control"

    /// Asks the daemon to stop (SIGTERM/SIGINT).
    public func stop() {
        cond.withLock {
            stopRequested = true
            if let s = stopSignal { stopSignal = nil; s.resume() }
        }
    }

    private func waitForStop() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            cond.withLock {
                if stopRequested { c.resume() } else { stopSignal = c }
            }
        }
    }

    /// SIGHUP: new classes and batching limits from the config file, without dropping work.
    public func reload(_ fresh: DarkroomConfig) {
        let changes = cond.withLock { () -> [ConfigChange] in
            let changes = config.changes(to: fresh)
            config = config.applyingReloadable(from: fresh)
            batcher.update(limits: Self.limits(config))
            cond.broadcast()
            return changes
        }
        _ = notifier.status(statusLine(.serving))
        let applied = changes.filter(\.reloadable).map(\.key)
        let ignored = changes.filter { !$0.reloadable }.map(\.key)
        logger.notice("configuration reloaded", metadata: [
            "event": "reload", "applied": "\(applied.joined(separator: ","))",
            "needs_restart": "\(ignored.joined(separator: ","))",
        ])
    }

    private func connectWithBackoff() async throws {
        var delay = 0.5
        while true {
            do {
                try await client.start()
                return
            } catch {
                if cond.withLock({ stopRequested }) { throw error }
                logger.error("cannot connect to the broker, retrying in \(String(format: "%.1f", delay)) s: \(error)",
                             metadata: ["event": "broker_down"])
                _ = notifier.status(statusLine(.waiting("waiting for the broker")))
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, Double(cond.withLock { config.broker.reconnectMaxBackoff }))
            }
        }
    }

    private func brokerStateChanged(_ state: ClientState) {
        switch state {
        case .disconnected(let error):
            // Deliveries of the dead connection cannot be acked any more; the broker requeued them.
            let dropped = cond.withLock { () -> Int in
                staleSerial = maxSerialSeen
                return batcher.remove { $0.delivery.connectionSerial <= self.staleSerial }.count
            }
            metrics.brokerConnected(false, reconnect: false)
            logger.error("broker connection lost: \(error); \(dropped) queued job(s) left to the broker",
                         metadata: ["event": "broker_down"])
        case .connected(let server):
            let reconnect = cond.withLock { consumersDown = []; connections += 1; return connections > 1 }
            metrics.brokerConnected(true, reconnect: reconnect)
            liveness.setBusy("consumers", false)
            logger.notice("connected to \(server)", metadata: ["event": "broker_up"])
        case .consumerDown(let queue, let reason, let retryIn):
            let first = cond.withLock { () -> Bool in
                defer { consumersDown.insert(queue) }
                return consumersDown.isEmpty
            }
            if first { liveness.setBusy("consumers", true) }
            logger.warning("no consumer on \(queue): \(reason); subscribing again in \(retryIn)",
                           metadata: ["event": "consumer_down", "queue": "\(queue)"])
        case .consumerUp(let queue):
            let none = cond.withLock { consumersDown.remove(queue); return consumersDown.isEmpty }
            if none { liveness.setBusy("consumers", false) }
            logger.notice("consuming \(queue) again", metadata: ["event": "consumer_up", "queue": "\(queue)"])
        case .reconnecting(let attempt, let delay):
            logger.warning("reconnecting (attempt \(attempt)) in \(delay)", metadata: ["event": "broker_reconnect"])
        case .closed:
            break
        }
    }

    /// SIGTERM: stop consuming, requeue what waits, let the running batch finish before the
    /// drain deadline (else stop it and requeue its jobs), wait for the last confirms and acks.
    private func drain() async {
        let tokens = cond.withLock { () -> [ConsumerToken] in
            stopping = true
            serving = false
            cond.broadcast()
            return consumers
        }
        for t in tokens { try? await client.cancel(t) }
        let waiting = cond.withLock { batcher.remove { _ in true } }
        for p in waiting { await settle(p.delivery, requeue: true) }
        let deadline = Date().addingTimeInterval(Double(cond.withLock { config.worker.drainDeadline }))
        while !cond.withLock({ engineDone }) {
            if Date() >= deadline, !cond.withLock({ abortRunning }) {
                logger.warning("drain deadline reached: stopping the running batch and requeueing its jobs",
                               metadata: ["event": "drain_deadline"])
                cond.withLock { abortRunning = true }
            }
            _ = notifier.extendTimeout(.seconds(5))
            try? await Task.sleep(for: .milliseconds(100))
        }
        // The last events, then what their confirms started (ledger, acks, requeues).
        while publisher.backlog > 0 || work.count > 0 {
            await work.waitAll()
            if publisher.backlog > 0 { try? await Task.sleep(for: .milliseconds(20)) }
        }
        // Webhook posts still queued or retrying get what is left of the drain deadline (at least 5 s); the jobs
        // themselves are acked already.
        await deliveries.webhooks.finish(deadline: max(deadline, Date().addingTimeInterval(5)))
    }

    /// WATCHDOG=1 only while both loops live: the engine loop (beats each step and each idle wait) and
    /// the connection's I/O loop (a passive declare of the dead-letter queue through the client must come
    /// back). The probe runs in its own task, so a stuck I/O loop stalls only the probe, never the pings'
    /// decision. While the client is between connections the I/O part is idle: the client reconnects on its
    /// own, and a dead broker is not the worker's fault. STATUS= is refreshed on the same beat.
    private func watchdogLoop() async {
        let liveness = self.liveness
        let pingInterval = liveness.pingInterval
        let watchdogOn = notifier.watchdogInterval() != nil
        liveness.setBusy("engine", true)
        let probe = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                if client.isConnected {
                    liveness.setBusy("io", true)
                    _ = try? await client.queueInfo(name: topology.deadQueue)
                }
                liveness.setBusy("io", false)
                try? await Task.sleep(for: pingInterval)
            }
        }
        defer { probe.cancel() }
        var lastStatus = ""
        while !Task.isCancelled {
            try? await Task.sleep(for: pingInterval)
            if cond.withLock({ engineDone }) { liveness.setBusy("engine", false) }
            if watchdogOn {
                let stale = liveness.staleParts()
                if stale.isEmpty {
                    liveness.tick()
                } else {
                    let parts = stale.joined(separator: " and ")
                    logger.error("not alive: \(parts) made no progress for \(liveness.staleAfter); withholding WATCHDOG=1 so systemd restarts the worker",
                                 metadata: ["event": "watchdog"])
                }
            }
            let status = statusLine(cond.withLock { stopping } ? .draining : .serving)
            if status != lastStatus, notifier.status(status) { lastStatus = status }
        }
    }

    /// What the worker is doing, for the STATUS= line.
    enum Activity: Equatable {
        /// Taking jobs (shown as reconnecting while the client is between connections).
        case serving
        /// Finishing the running batch before exit.
        case draining
        /// Not serving yet, with a note saying why (e.g. "waiting for the broker").
        case waiting(String)
    }

    /// The STATUS= line (ServiceStatus): state, classes, jobs done/failed, the running batch, schedule-cache hits.
    func statusLine(_ activity: Activity) -> String {
        let (classes, d, f, batch, down, stateProblem) = cond.withLock {
            (config.consumedClasses.map(\.name), done, failed, currentBatch, consumersDown, self.stateProblem)
        }
        let c = schedules.counts
        var status = ServiceStatus(state: .consuming, classes: classes, jobsDone: d, jobsFailed: f, batch: batch,
                                   scheduleCacheHits: c.hits + c.diskHits, scheduleCacheMisses: c.misses)
        switch activity {
        case .serving:
            status.state = client.isConnected ? .consuming : .reconnecting
            if client.isConnected, !down.isEmpty {
                let names = classes.filter { down.contains(topology.jobQueue(forClass: $0)) }
                    + (down.contains { !$0.hasPrefix(topology.namespace + ".jobs.") } ? ["control"] : [])
                status.note = "no consumer on \(names.joined(separator: ", ")), retrying"
            }
        case .draining: status.state = .draining
        case .waiting(let note):
            status.state = client.isConnected ? .consuming : .connecting
            status.note = note
        }
        if stateProblem != nil {
            status.note = [status.note, "state_dir not writable"].compactMap { $0 }.joined(separator: "; ")
        }
        return status.description
    }

    // MARK: - acker

    /// Publishes a job's terminal event; once the broker confirmed it, records the job in the
    /// ledger and acks the delivery. A publish that fails (channel closed, connection between
    /// attempts) or that the broker nacks (a reply queue at its max-length with `x-overflow:
    /// reject-publish`) is tried again `terminalAttempts` times with backoff. After that a failed
    /// publish requeues the delivery (it is never left unacked on a live connection); a nacked one
    /// dead-letters the job with the reason, since running it again would only be refused again.
    /// A terminal event the broker returns (no queue of that name: the reply queue was deleted)
    /// cannot be answered either: the job is dead-lettered with the reason.
    func terminal(_ event: OutgoingEvent, for delivery: Delivery, jobID: String, replyTo: String?, correlationID: String?,
                  labels: JobLabels, failure: FailureCode?, webhook: Webhook? = nil, metadata: Logger.Metadata) {
        if let webhook { deliveries.webhooks.post(event, to: webhook) }
        let failedKind = event.kind == .failed
        cond.withLock { if failedKind { failed += 1 } else { done += 1 } }
        metrics.jobEnded(labels, failure: failure)
        guard let replyTo else {
            work.run { await self.settle(delivery, requeue: false) }
            return
        }
        // A job of a connection that has since closed was requeued by the broker, and its redelivery (to
        // this worker or another) answers it: answering it here too gives the client two terminal events
        // (found by `ops/chaos/run cluster`: 2 of 300 jobs).
        if leftToRedelivery(delivery, metadata) { return }
        publisher.send(event, replyTo: replyTo, correlationID: correlationID) { [self] result in
            work.run { [self] in
                var result = result
                var attempt = 1
                while attempt < Self.terminalAttempts, Self.worthRetrying(result) {
                    if leftToRedelivery(delivery, metadata) { return }
                    let why = if case .failure(let error) = result { "\(error)" } else { "the broker refused it" }
                    logger.warning("terminal event not confirmed (\(why)); publishing it again (attempt \(attempt + 1) of \(Self.terminalAttempts))",
                                   metadata: metadata)
                    try? await Task.sleep(for: .milliseconds(200 << attempt))   // backoff between publishes
                    if leftToRedelivery(delivery, metadata) { return }
                    result = await publisher.sendAndWait(event, replyTo: replyTo, correlationID: correlationID)
                    attempt += 1
                }
                switch result {
                case .success(.acked):
                    // The client has its one terminal event: the ack follows whatever the ledger says. The ledger only
                    // lets a redelivery after a crash before this ack be recognised; without it that redelivery would
                    // run and answer again, so a failed write is made loud (log, /readyz, STATUS=, metrics), never silent.
                    do {
                        try ledger.record(jobID)
                        stateWriteSucceeded()
                    } catch {
                        stateWriteFailed(.ledger, error, metadata)
                    }
                    results.remove(key: KeptResults.key(jobID: jobID, body: delivery.body))
                    await settle(delivery, requeue: false)
                case .success(.returned(let code, let text)):
                    let reason = "the reply queue \"\(replyTo)\" does not exist (the broker returned the terminal event: \(code) \(text)); the job's answer was lost"
                    logger.error("\(reason); dead-lettering the job", metadata: metadata)
                    await deadLetter(delivery, reason: reason, meta: metadata)
                case .success(.nacked):
                    let reason = "the broker refused the terminal event for reply queue \"\(replyTo)\" \(Self.terminalAttempts) times (a queue at its x-max-length with x-overflow reject-publish?); the job's answer was lost"
                    logger.error("\(reason); dead-lettering the job", metadata: metadata)
                    await deadLetter(delivery, reason: reason, meta: metadata)
                case .failure(let error):
                    logger.error("terminal event not confirmed after \(Self.terminalAttempts) attempts (\(error)); requeueing the job",
                                 metadata: metadata)
                    await settle(delivery, requeue: true)
                }
            }
        }
    }

    /// A file under the state dir that could not be written.
    enum StateFile: String {
        case ledger, results
    }

    /// A write under state_dir failed (read-only, full, gone): says so at error level with what it costs, and
    /// marks the worker not ready until the ledger takes a write again.
    func stateWriteFailed(_ file: StateFile, _ error: any Error, _ metadata: Logger.Metadata) {
        let consequence = switch file {
        case .ledger: "the job is answered and acked, but a redelivery of it (after a crash before an ack) would not be recognised and would be answered twice"
        case .results: "if the terminal event cannot be confirmed, the redelivery computes the job again"
        }
        let problem = "cannot write the \(file.rawValue) under state_dir \(stateDir): \(error)"
        cond.withLock { stateProblem = problem }
        metrics.stateWrite(file.rawValue, ok: false)
        logger.error("\(problem); \(consequence). Make state_dir writable with free space; /readyz answers 503 until then",
                     metadata: metadata.with("event", "state_unwritable"))
    }

    /// The ledger took a write: the state dir is usable again.
    func stateWriteSucceeded() {
        let was = cond.withLock { () -> String? in defer { stateProblem = nil }; return stateProblem }
        metrics.stateWrite(StateFile.ledger.rawValue, ok: true)
        if was != nil { logger.notice("state_dir \(stateDir) is writable again", metadata: ["event": "state_writable"]) }
    }

    var stateDir: String { cond.withLock { config.stateDir } }

    /// Whether `delivery` came on a connection that has since closed (then the broker requeued it and
    /// its redelivery answers it); says so in the log.
    func leftToRedelivery(_ delivery: Delivery, _ metadata: Logger.Metadata) -> Bool {
        guard cond.withLock({ staleSerial > 0 && delivery.connectionSerial <= staleSerial }) else { return false }
        logger.notice("the connection this job came on is gone: the broker redelivers it, and that delivery answers it",
                      metadata: metadata.with("event", "left_to_redelivery"))
        return true
    }

    /// A terminal publish that failed or was nacked may go through on another attempt; one the broker
    /// confirmed or returned (unroutable) will not change.
    static func worthRetrying(_ result: Result<PublishOutcome, any Error>) -> Bool {
        switch result {
        case .failure, .success(.nacked): true
        case .success(.acked), .success(.returned): false
        }
    }

    static let terminalAttempts = 5   // backoff 0.4 + 0.8 + 1.6 + 3.2 s: a quorum reply queue elects a new leader within that

    /// Acks (or nacks with requeue) a delivery; a delivery of a dead connection was already requeued.
    func settle(_ delivery: Delivery, requeue: Bool) async {
        do {
            if requeue { try await client.nack(delivery, requeue: true) } else { try await client.ack(delivery) }
        } catch {
            logger.warning("could not \(requeue ? "requeue" : "ack") delivery \(delivery.deliveryTag): \(error)")
        }
    }

    /// An event of a running job: to its webhook (if it wants this kind; queued, never waited for) and its reply queue.
    func send(_ event: OutgoingEvent, _ job: Job) {
        if let webhook = job.webhook { deliveries.webhooks.post(event, to: webhook) }
        guard let replyTo = job.replyTo else { return }
        publisher.send(event, replyTo: replyTo, correlationID: job.correlationID)
    }
}

/// Lets the client's state callback reach the daemon, which is created after the client.
final class ClientStateBox: @unchecked Sendable {
    var handler: (@Sendable (ClientState) -> Void)?
}
