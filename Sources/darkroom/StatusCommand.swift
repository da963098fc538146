import AMQP
import ArgumentParser
import Config
import Foundation
import Jobs

/// `darkroom status`: asks every worker on the bus over `<ns>.control` (fanout) and prints one line per
/// worker that answers. No HTTP: whatever can submit jobs can ask.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Ask every worker over the control exchange; print one line per worker.",
        discussion: """
            Each darkroomd answers with its id, classes, models, state (consuming, reconnecting, draining), the batch \
            it is running, jobs done/failed since it started, and its uptime. Answers are collected for --timeout \
            seconds, or until --expect workers answered. Exit 1 when no worker answered.
            """)

    @OptionGroup var broker: BrokerOptions
    @Flag(help: "Print a JSON array of the workers' reports (sorted by worker id).") var json = false
    @Option(help: "Seconds to wait for answers (0.1..600).") var timeout: Double = 2
    @Option(help: "Stop waiting once this many workers answered.") var expect: Int?

    func validate() throws {
        guard (0.1...600).contains(timeout) else { throw ValidationError("--timeout must be between 0.1 and 600 seconds, got \(timeout)") }
        if let expect, expect < 1 { throw ValidationError("--expect must be at least 1, got \(expect)") }
    }

    func run() async throws {
        let cfg = try broker.load()
        let client = try await broker.connect(cfg)
        let reports: [WorkerStatusReport]
        do {
            reports = try await ask(client, cfg)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        } else {
            for r in reports { print(r.line) }
        }
        if reports.isEmpty {
            warn("no worker answered on \(cfg.contractTopology.controlExchange) within \(timeout) s")
            throw ExitCode(1)
        }
    }

    /// Publishes `{"v":1,"status":true}` with a private reply queue and collects the answers.
    func ask(_ client: AMQPClient, _ cfg: DarkroomConfig) async throws -> [WorkerStatusReport] {
        let request = UUID().uuidString.lowercased()
        let replyQueue = "\(cfg.namespace).status.\(request)"
        _ = try await client.declareQueue(name: replyQueue, durable: false, exclusive: true, autoDelete: true)
        let (stream, continuation) = AsyncStream<Delivery>.makeStream()
        let token = try await client.consume(queue: replyQueue, prefetch: 64) { continuation.yield($0) }
        let props = MessageProperties(contentType: "application/json", correlationId: request, replyTo: replyQueue)
        let exchange = cfg.contractTopology.controlExchange
        let outcome: PublishOutcome
        do {
            outcome = try await client.publish(exchange: exchange, routingKey: "", body: ControlMessage.status.encodedBody(),
                                               properties: props, mandatory: true)
        } catch {
            throw CLIError("cannot publish to \(exchange): \(error) (no worker ever declared it? `darkroom topology declare`)")
        }
        if case .returned = outcome { return [] }   // no worker's control queue is bound
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        let timer = Task { try? await Task.sleep(until: deadline); continuation.finish() }
        defer { timer.cancel() }
        var byWorker: [String: WorkerStatusReport] = [:]
        for await delivery in stream {
            try? await client.ack(delivery)
            guard delivery.properties.correlationId == request else { continue }
            do {
                let report = try WorkerStatusReport.decode(delivery.body)
                byWorker[report.worker] = report
            } catch {
                warn("warning: an answer could not be read: \(error)")
            }
            if let expect, byWorker.count >= expect { break }
        }
        try? await client.cancel(token)
        return byWorker.values.sorted { $0.worker < $1.worker }
    }
}
