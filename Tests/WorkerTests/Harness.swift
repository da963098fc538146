import AMQP
import Config
import Core
import Foundation
import Jobs
import Logging
import TestSupport
import Testing
@testable import Worker

// The end-to-end harness: a real broker (make test starts it), a real worker (in-process, or
// the darkroomd binary for kill -9), the fixture model folder from diffusers, and a reply
// consumer that records every event.

let brokerURL = ProcessInfo.processInfo.environment["DARKROOM_BROKER_URLS"] ?? "amqp://guest:guest@127.0.0.1:5672/"
let fixtureModels = repoRoot + "/Tests/DiffusionTests/Fixtures"

/// A config for one test: its own namespace (so its queues are its own), state dirs in a temp
/// folder, the fixture latent DiT, classes `tiny` (<= 32x32) and `big` (<= 128x128).
/// `broker` replaces the [broker] lines (urls and heartbeat) when given; `model` the fixture model.
func testConfig(namespace: String, state: String, maxBatch: Int = 4, windowMs: Int = 300, extra: String = "",
                broker: String? = nil, model: (dir: String, name: String)? = nil) throws -> DarkroomConfig {
    let toml = """
    namespace = "\(namespace)"
    state_dir = "\(state)/state"
    cache_dir = "\(state)/cache"
    seeds_dir = "\(state)/seeds"
    model_dir = "\(model?.dir ?? fixtureModels)"
    default_model = "\(model?.name ?? "latent-dit")"
    [broker]
    \(broker ?? "urls = [\"\(brokerURL)\"]\nheartbeat = 10")
    [worker]
    id = "test-\(namespace)"
    progress_max_hz = 1000
    drain_deadline = 20
    \(extra)
    [classes.tiny]
    max_pixels = 1024
    max_batch = \(maxBatch)
    batch_window_ms = \(windowMs)
    prefetch = 32
    [classes.big]
    max_pixels = 16384
    max_batch = \(maxBatch)
    batch_window_ms = \(windowMs)
    prefetch = 32
    """
    return try DarkroomConfig.parse(toml: toml, source: .file("test.toml"))
}


func darkroomdBinary() -> String { builtProduct("darkroomd") }
func darkroomBinary() -> String { builtProduct("darkroom") }

/// For a test that runs the darkroomd binary (it reads config/darkroom.toml, so the default size classes):
/// its own namespace and temp state folder, and a client with the contract's topology declared.
func binaryWorkerTest() async throws -> (ns: String, dir: String, client: TestClient) {
    let ns = uniqueNamespace(), dir = tempDir()
    var cfg = try testConfig(namespace: ns, state: dir)
    cfg.classes = DarkroomConfig.defaultClasses
    return (ns, dir, try await TestClient(namespace: ns, topology: cfg.contractTopology))
}

func uniqueNamespace() -> String { "t\(UInt32.random(in: 0...UInt32.max))" }

/// A worker running in this process.
final class TestWorker: @unchecked Sendable {
    let daemon: Daemon
    let task: Task<Void, any Error>

    init(_ config: DarkroomConfig) async throws {
        let engine = try Engine(config: config)
        var logger = Logger(label: "test-worker")
        logger.logLevel = .warning
        daemon = try Daemon(config: config, engine: engine, logger: logger, notifier: .silent)
        let d = daemon
        task = Task { try await d.run() }
        #expect(await d.started.wait(timeout: .seconds(120)), "the worker did not start serving")
    }

    func stop() async throws {
        daemon.stop()
        try await task.value
    }
}

/// One recorded event.
struct Seen: Sendable {
    let event: JobEvent
    let delivery: Delivery
}

/// A producer and reply consumer for tests.
final class TestClient: @unchecked Sendable {
    let client: AMQPClient
    let namespace: String
    let replyQueue: String
    private let seen = Locked<(events: [Seen], raw: [Delivery])>(([], []))
    /// Opened (and replaced) at every delivery: what `wait` sleeps on.
    private let arrived = Locked(Gate())

    /// `durableReply`: the reply queue survives a broker restart (for tests that restart their own node).
    init(namespace: String, topology: Topology? = nil, url: String = brokerURL, durableReply: Bool = false) async throws {
        self.namespace = namespace
        var settings = try ClientSettings(urls: url, connectionName: "test-client")
        settings.reconnectInitialDelay = .milliseconds(200)
        settings.reconnectMaxDelay = .seconds(1)
        client = AMQPClient(settings: settings)
        try await client.start()
        if let topology { try await client.declare(topology) }
        replyQueue = "\(namespace).reply"
        _ = try await client.declareQueue(name: replyQueue, durable: durableReply, exclusive: false, autoDelete: false)
        _ = try await client.consume(queue: replyQueue, prefetch: 200) { [weak self] d in self?.record(d) }
    }

    private func record(_ d: Delivery) {
        let headers = d.headers.contractHeaders
        let event = try? JobEvent.decode(body: d.body, contentType: d.properties.contentType, headers: headers)
        seen.withLock { seen in
            seen.raw.append(d)
            if let event { seen.events.append(Seen(event: event, delivery: d)) }
        }
        arrived.withLock { gate in
            gate.open()
            gate = Gate()
        }
        Task { try? await client.ack(d) }
    }

    /// Publishes a job body (as JSON text) to `class`'s routing key with a reply_to.
    @discardableResult
    func submit(_ body: String, toClass cls: String, id: String? = nil, expiration: String? = nil, replyTo: Bool = true) async throws -> PublishOutcome {
        let props = MessageProperties(contentType: "application/json", deliveryMode: .persistent, correlationId: id,
                                      replyTo: replyTo ? replyQueue : nil, expiration: expiration, messageId: id)
        return try await client.publish(exchange: "\(namespace).jobs", routingKey: cls, body: Array(body.utf8), properties: props)
    }

    func cancel(_ id: String) async throws {
        _ = try await client.publish(exchange: "\(namespace).control", routingKey: "", body: Array("{\"v\":1,\"cancel\":\"\(id)\"}".utf8))
    }

    func events(of id: String) -> [JobEvent] { seen.value.events.filter { $0.event.jobID == id }.map(\.event) }
    var all: [Seen] { seen.value.events }
    var rawCount: Int { seen.value.raw.count }

    func terminal(of id: String) -> JobEvent? { events(of: id).first { $0.kind.isTerminal } }

    /// Waits until `done` holds or the timeout passes. `done` is checked again at every delivery to the reply
    /// queue, and at least once a second for conditions outside it (a file, a counter).
    func wait(timeout: Double = 60, until done: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let next = arrived.value
            if done() { return true }
            _ = await next.wait(timeout: .milliseconds(Int(1000 * min(1, max(0, end.timeIntervalSinceNow)))))
        }
        return done()
    }

    /// Returns once every event published to the reply queue before this call has been received: a marker
    /// sent through the same queue comes after them (one queue delivers in order).
    func barrier(timeout: Double = 30) async throws -> Bool {
        let marker = "barrier-\(UUID().uuidString)"
        _ = try await client.publish(exchange: "", routingKey: replyQueue, body: Array(marker.utf8))
        return await wait(timeout: timeout) { seen.value.raw.contains { $0.body == Array(marker.utf8) } }
    }

    func waitTerminal(_ ids: [String], timeout: Double = 60) async -> Bool {
        await wait(timeout: timeout) { ids.allSatisfy { terminal(of: $0) != nil } }
    }

    /// Deletes this test's queues and exchanges.
    func cleanUp(classes: [String] = ["tiny", "big"]) async {
        for q in classes.map({ "\(namespace).jobs.\($0)" }) + ["\(namespace).dead", replyQueue] {
            _ = try? await client.deleteQueue(name: q)
        }
        for e in ["jobs", "dead", "control"] { try? await client.deleteExchange(name: "\(namespace).\(e)") }
        await client.close()
    }
}

func job(_ id: String, prompt: String = "red circle", size: Int = 32, steps: Int = 4, seed: UInt64 = 1, extra: String = "") -> String {
    "{\"v\":1,\"id\":\"\(id)\",\"prompt\":\"\(prompt)\",\"width\":\(size),\"height\":\(size),\"steps\":\(steps),\"seed\":\(seed)\(extra)}"
}

extension JobEvent {
    var png: [UInt8]? { if case .image(let e) = self { return e.png } else { return nil } }
    var accepted: AcceptedEvent? { if case .accepted(let e) = self { return e } else { return nil } }
    var failure: JobFailure? { if case .failed(let e) = self { return e.failure } else { return nil } }
}
