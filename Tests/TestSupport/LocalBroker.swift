// The checkout's own broker (ops/broker): its ports, rabbitmqctl, and the certificates of its TLS listener
// (made by ops/tls-certs).
import Foundation
import Glibc

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

/// A RabbitMQ node of a test's own (ops/broker with its own ports and state folder), for tests that stop, kill or
/// restart the broker without disturbing the shared one other tests use at the same time.
public final class BrokerNode: Sendable {
    public let port: Int
    public let tlsPort: Int
    public let state: String

    /// amqp://guest:guest@127.0.0.1:PORT/
    public var url: String { "amqp://guest:guest@127.0.0.1:\(port)/" }

    /// Picks free ports (the node also uses port + 20000 for Erlang distribution) and starts the node.
    public init(state: String) throws {
        func free(_ p: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(p).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        var chosen: Int?
        for _ in 0..<200 {
            let p = Int.random(in: 30_000...45_000)
            if free(p) && free(p + 10) && free(p + 20_000) { chosen = p; break }
        }
        guard let chosen else { throw BrokerNodeError("no free ports for a test broker node") }
        port = chosen
        tlsPort = chosen + 10
        self.state = state
        try start()
    }

    /// Runs `ops/broker COMMAND` for this node. posix_spawn, not Foundation's Process: the broker it starts
    /// detaches and would inherit (and hold open) whatever descriptors the test process has, which blocks
    /// Process from seeing its children exit; here the child gets only stdin and a log file.
    private func ops(_ command: String) throws -> String {
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let log = state + "/ops-broker-\(command).log"
        var env = ProcessInfo.processInfo.environment
        env["DARKROOM_BROKER_PORT"] = String(port)
        env["DARKROOM_BROKER_TLS_PORT"] = String(tlsPort)
        env["DARKROOM_BROKER_STATE"] = state
        // bash closes every descriptor above 2 (posix_spawn_file_actions_addclosefrom_np is not visible to Swift).
        let closeAndRun = "for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec \"$0\" \"$@\""
        let argv = ["/bin/bash", "-c", closeAndRun, repoRoot + "/ops/broker", command]
        let envp = env.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let rc = withCStrings(argv) { a in withCStrings(envp) { e in posix_spawn(&pid, argv[0], &actions, nil, a, e) } }
        guard rc == 0 else { throw BrokerNodeError("cannot run ops/broker \(command): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw BrokerNodeError("ops/broker \(command) failed (status \(status)): \(text)") }
        return text
    }

    /// Starts the node and waits until it serves.
    public func start() throws { _ = try ops("start") }

    /// Stops it gracefully (rabbitmqctl stop).
    public func stop() throws { _ = try ops("stop") }

    /// Kills the node's VM (SIGKILL), as a crash or power loss would.
    public func kill() throws {
        let pidText = try String(contentsOfFile: state + "/rabbitmq.pid", encoding: .utf8)
        guard let pid = Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BrokerNodeError("no pid in \(state)/rabbitmq.pid")
        }
        guard Glibc.kill(pid, SIGKILL) == 0 else { throw BrokerNodeError("kill -9 \(pid) failed") }
        // Not a child of this process: no wait(2); the VM is gone within moments of SIGKILL.
        for _ in 0..<100 where Glibc.kill(pid, 0) == 0 { usleep(50_000) }
    }
}

public struct BrokerNodeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// `body` with a NULL-terminated C array of the strings.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return body(pointers)
}
