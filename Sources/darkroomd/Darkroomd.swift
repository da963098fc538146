import ArgumentParser
import Config
import Dispatch
import Foundation
import Logging
import Systemd
import Worker

@main
struct Darkroomd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "darkroomd",
        abstract: "The Darkroom worker: consumes generation jobs from RabbitMQ and answers with progress and PNGs.",
        discussion: """
            Signals: SIGTERM/SIGINT drain (stop consuming, finish or requeue the running batch, exit 0); \
            SIGHUP reloads classes and batching limits from the config file.
            """)

    @Option(help: "Config file (default /etc/darkroom/darkroom.toml, falling back to built-in defaults).")
    var config: String?

    @Option(help: "Instance name CLASS-N (the systemd template's %i): consume only CLASS, worker id <host>-CLASS-N.")
    var instance: String?

    @Flag(help: "Load the config and the models, print what would be served, and exit.")
    var check = false

    func loadConfig() throws -> DarkroomConfig {
        var env = ProcessInfo.processInfo.environment
        if let instance {
            let name = try InstanceName(parsing: instance)
            env[DarkroomConfig.environmentName(forKey: "worker.consume")] = name.className
            let id = DarkroomConfig.environmentName(forKey: "worker.id")
            if env[id] == nil { env[id] = "\(ProcessInfo.processInfo.hostName)-\(name)" }
        }
        return try DarkroomConfig.load(path: config, environment: env)
    }

    func run() async throws {
        let cfg: DarkroomConfig
        do {
            cfg = try loadConfig()
        } catch {
            FileHandle.standardError.write(Data("darkroomd: \(error)\n".utf8))
            throw ExitCode(78)   // EX_CONFIG: systemd will not restart-loop on a bad config forever
        }
        // systemd's variables (NOTIFY_SOCKET, WATCHDOG_USEC/PID, JOURNAL_STREAM) are read here, once.
        let environment = ProcessInfo.processInfo.environment
        let level = Logger.Level(rawValue: cfg.log.level.rawValue) ?? .info
        LoggingBootstrap.bootstrap(identifier: "darkroomd", level: level,
                                   format: Systemd.LogFormat(rawValue: cfg.log.format.rawValue) ?? .auto,
                                   environment: environment)
        let logger = {
            var l = Logger(label: "darkroomd")
            l[metadataKey: "worker"] = "\(cfg.worker.id)"
            return l
        }()
        for name in DarkroomConfig.unrecognizedEnvironment(environment) {
            logger.warning("ignoring unknown environment variable \(name)")
        }

        // The listener starts before the models load: /healthz answers at once, /readyz says "loading models".
        let health = HealthBoard()
        var observability: ObservabilityServer?
        if !check, let endpoint = cfg.metrics.endpoint {
            let registry = ObservabilityServer.bootstrapMetrics()
            do {
                let server = try await ObservabilityServer(endpoint: endpoint, registry: registry, health: health, workerID: cfg.worker.id)
                logger.info("metrics listening on http://\(server.address) (GET /metrics, /healthz, /readyz)",
                            metadata: ["event": "metrics_listening", "address": "\(server.address)"])
                observability = server
            } catch {
                logger.critical("\(error)", metadata: ["event": "config_error"])
                throw ExitCode(78)
            }
        }

        let notifier = Notifier(environment: environment)
        let engine: Engine
        do {
            engine = try Engine(config: cfg) { step in
                _ = notifier.extendTimeout(.seconds(120))
                _ = notifier.status(step)
                logger.info("\(step)", metadata: ["event": "model_loading"])
            }
        } catch {
            logger.critical("\(error)", metadata: ["event": "model_error"])
            await observability?.stop()
            throw ExitCode(1)
        }
        if check {
            for m in engine.catalog.models {
                print("\(m.name): \(m.labels.count) labels, sizes \(m.sizes.map(\.description).joined(separator: " ")), "
                      + "default \(m.defaultWidth)x\(m.defaultHeight) \(m.defaultSteps) steps \(m.defaultSampler)")
            }
            return
        }

        let daemon = try Daemon(config: cfg, engine: engine, logger: logger, notifier: notifier)
        health.attach(daemon)
        let signals = SignalHandlers()
        signals.on(SIGTERM) { daemon.stop() }
        signals.on(SIGINT) { daemon.stop() }
        signals.on(SIGHUP) {
            do {
                daemon.reload(try loadConfig())
            } catch {
                logger.error("reload refused, keeping the running configuration: \(error)", metadata: ["event": "reload"])
            }
        }
        do {
            try await daemon.run()
        } catch {
            logger.critical("\(error)", metadata: ["event": "fatal"])
            await observability?.stop()
            throw ExitCode(1)
        }
        await observability?.stop()
        withExtendedLifetime(signals) {}
    }
}

/// Signals as dispatch sources (the default handlers are ignored while they live).
final class SignalHandlers: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    func on(_ signo: Int32, _ handler: @escaping @Sendable () -> Void) {
        signal(signo, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: signo, queue: .global())
        s.setEventHandler(handler: handler)
        s.resume()
        sources.append(s)
    }
}
