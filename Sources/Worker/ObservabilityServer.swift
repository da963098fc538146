// ObservabilityServer: darkroomd's small HTTP listener (`metrics.listen`): GET /metrics (Prometheus text
// format 0.0.4 from the registry swift-metrics writes to), GET /healthz and GET /readyz (Health.swift).
// FlyingFox serves it: async/await over plain sockets, two small modules and no SwiftNIO (whose event
// loops, allocators and a dozen modules would more than double the worker's dependencies for three GET routes).
import Config
import Core
import CoreMetrics
import FlyingFox
import FlyingSocks
import Foundation
import Prometheus

/// A listener that cannot start.
public struct ObservabilityError: CodedError {
    public enum Code: String, Sendable { case listen }
    public var code: Code { .listen }
    public let message: String
}

public final class ObservabilityServer: Sendable {
    public let registry: PrometheusCollectorRegistry
    let health: HealthBoard
    private let http: HTTPServer
    private let task: Task<Void, any Error>
    /// Where it listens (the real port when the configured one was 0).
    public let address: String
    private let rss: Prometheus.Gauge
    private let ready: Prometheus.Gauge
    private let live: Prometheus.Gauge

    /// Routes a registry into swift-metrics, once per process: every `Counter(label:)` etc. of the worker
    /// lands in it. Histogram buckets: durations from 10 ms to 10 min (jobs take seconds to minutes),
    /// batch sizes in powers of two up to max_batch's limit of 64.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
            .map { Duration.milliseconds(Int64($0 * 1000)) }
        factory.valueHistogramBuckets[MetricName.batchSize] = [1, 2, 4, 8, 16, 32, 64]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// Binds `endpoint` and serves until `stop()`. Fails with a clear error when the address cannot be bound.
    public init(endpoint: DarkroomConfig.ListenAddress, registry: PrometheusCollectorRegistry, health: HealthBoard,
                workerID: String) async throws {
        self.registry = registry
        self.health = health
        let http: HTTPServer
        do {
            if endpoint.isIPv6 {
                http = HTTPServer(address: try sockaddr_in6.inet6(ip6: endpoint.host, port: endpoint.port), timeout: 15,
                                  logger: DisabledLogger.disabled)
            } else {
                http = HTTPServer(address: try sockaddr_in.inet(ip4: endpoint.host, port: endpoint.port), timeout: 15,
                                  logger: DisabledLogger.disabled)
            }
        } catch {
            throw ObservabilityError(message: "metrics.listen \"\(endpoint)\": not a usable address: \(error)")
        }
        self.http = http
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        }
        gauge("darkroom_worker_info", "Always 1; the worker id as a label", [("worker", workerID)]).set(1.0)
        gauge("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds")
            .set(Date().timeIntervalSince1970)
        rss = gauge("process_resident_memory_bytes", "Resident memory size in bytes")
        ready = gauge("darkroom_ready", "1 while GET /readyz answers 200")
        live = gauge("darkroom_live", "1 while GET /healthz answers 200")
        let (rss, ready, live) = (rss, ready, live)
        await http.appendRoute("GET /metrics") { _ in
            rss.set(Double(Self.residentBytes()))
            ready.set(health.readinessProbe().ok ? 1.0 : 0.0)
            live.set(health.livenessProbe().ok ? 1.0 : 0.0)
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                                body: Data(registry.emitToBuffer()))
        }
        await http.appendRoute("GET /healthz") { _ in Self.answer(health.livenessProbe()) }
        await http.appendRoute("GET /readyz") { _ in Self.answer(health.readinessProbe()) }
        await http.appendRoute("*") { _ in
            HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                         body: Data("not found: GET /metrics, /healthz or /readyz\n".utf8))
        }
        task = Task { try await http.run() }
        do {
            try await http.waitUntilListening(timeout: 5)
        } catch {
            task.cancel()
            let reason: String
            if case .failure(let e) = await task.result { reason = "\(e)" } else { reason = "\(error)" }
            throw ObservabilityError(message: "metrics.listen \"\(endpoint)\": cannot listen: \(reason) "
                                     + "(another process on the port? set another port, 0 for any free one, or \"\" to turn it off)")
        }
        switch await http.listeningAddress {
        case .ip4(let host, let port)?: address = "\(host):\(port)"
        case .ip6(let host, let port)?: address = "[\(host)]:\(port)"
        default: address = "\(endpoint)"
        }
    }

    /// Closes the listener and waits for it.
    public func stop() async {
        await http.stop(timeout: 1)
        _ = await task.result
    }

    static func answer(_ probe: Probe) -> HTTPResponse {
        HTTPResponse(statusCode: probe.ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                     body: Data((probe.reason + "\n").utf8))
    }

    /// Resident set size from /proc/self/statm (pages), as Prometheus' process collector reports it.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }
}
