// The checkout's own broker (ops/broker): its ports, rabbitmqctl, and the certificates of its TLS listener
// (made by ops/tls-certs).
import Foundation

public enum LocalBroker {
    static let environment = ProcessInfo.processInfo.environment

    /// The folder with ca.pem, other-ca.pem, client.pem/.key, stranger.pem/.key (ops/tls-certs).
    public static var tlsCerts: String {
        if let dir = environment["DARKROOM_BROKER_TLS_DIR"] { return dir }
        return (environment["DARKROOM_BROKER_STATE"] ?? repoRoot + "/.state/rabbitmq") + "/tls"
    }

    /// The plain AMQP port: DARKROOM_BROKER_PORT, else the first DARKROOM_BROKER_URLS entry's, else 5672.
    public static var plainPort: Int {
        if let p = environment["DARKROOM_BROKER_PORT"].flatMap(Int.init) { return p }
        let url = environment["DARKROOM_BROKER_URLS"] ?? "amqp://guest:guest@127.0.0.1:5672/"
        var rest = Substring(url.split(separator: ",").first ?? Substring(url))
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let hostPort = rest.split(separator: "/").first ?? rest
        return hostPort.split(separator: ":").dropFirst().last.flatMap { Int($0) } ?? 5672
    }

    /// DARKROOM_BROKER_TLS_PORT, else the plain port + 10, as ops/broker.
    public static var tlsPort: Int {
        environment["DARKROOM_BROKER_TLS_PORT"].flatMap(Int.init) ?? plainPort + 10
    }

    /// `ops/broker ctl ARGS` against the test broker; its stdout.
    public static func ctl(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: repoRoot + "/ops/broker")
        p.arguments = ["ctl"] + args
        var env = environment
        env["DARKROOM_BROKER_PORT"] = String(plainPort)
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The CN of client.pem: the broker user of EXTERNAL login (tests create it with rabbitmqctl).
    public static let tlsClientUser = "darkroom-tls-client"
}
