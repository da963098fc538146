import AMQP
import ArgumentParser
import Config
import Core
import Foundation
import Worker

/// Options every broker-facing command takes.
struct BrokerOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default /etc/darkroom/darkroom.toml, else built-in defaults).")
    var config: String?

    @Option(name: .long, help: "Broker URL(s), comma-separated; overrides broker.urls.")
    var broker: String?

    func load() throws -> DarkroomConfig {
        var env = ProcessInfo.processInfo.environment
        if let broker { env[DarkroomConfig.environmentName(forKey: "broker.urls")] = broker }
        return try DarkroomConfig.load(path: config, environment: env)
    }

    /// A connected client, or a clean CLI error.
    func connect(_ cfg: DarkroomConfig) async throws -> AMQPClient {
        let client = AMQPClient(settings: try cfg.clientSettings(name: "darkroom-cli"))
        do {
            try await client.start()
        } catch {
            throw CLIError("cannot reach the broker at \(cfg.broker.urls.map(DarkroomConfig.redacted).joined(separator: ", ")): \(error)")
        }
        return client
    }
}

/// A one-line error for the person at the terminal (the command exits 1).
struct CLIError: CodedError {
    enum Code: String, Sendable { case commandFailed = "command_failed" }
    var code: Code { .commandFailed }
    let message: String
    init(_ message: String) { self.message = message }
}

/// Writes to stderr (progress bars, notes) without touching stdout.
func warn(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}

let stderrIsTerminal = isatty(2) == 1
