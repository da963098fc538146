// Shared helpers for the tests that talk to the real local broker (ops/broker).
import Core
import Foundation
import Testing
import TestSupport
@testable import AMQP

enum Broker {
    /// DARKROOM_BROKER_URLS, or the local node.
    static var urls: String {
        ProcessInfo.processInfo.environment["DARKROOM_BROKER_URLS"] ?? "amqp://guest:guest@127.0.0.1:5672/"
    }

    static func uris(query: String = "") throws -> [AMQPURI] {
        try AMQPURI.parseList(urls).map { uri in
            guard !query.isEmpty else { return uri }
            return try AMQPURI(rawText(uri) + "?" + query)
        }
    }

    /// Rebuilds a URI text (with its password) so that query parameters can be added.
    private static func rawText(_ u: AMQPURI) -> String {
        let vhost = u.vhost == "/" ? "" : AMQPURI.percentEncode(u.vhost)
        return "\(u.tls ? "amqps" : "amqp")://\(AMQPURI.percentEncode(u.user)):\(AMQPURI.percentEncode(u.password))@\(u.server)/\(vhost)"
    }

    static func unique(_ what: String) -> String {
        "darkroom-amqptest.\(what).\(UInt32.random(in: 0...UInt32.max))"
    }

    /// A started client; closed (and the given queues deleted) when `body` ends.
    static func withClient<T>(query: String = "", name: String = unique("conn"), cleanUp queues: [String] = [],
                              stateChanged: @escaping @Sendable (ClientState) -> Void = { _ in },
                              _ body: (AMQPClient) async throws -> T) async throws -> T {
        let client = AMQPClient(settings: ClientSettings(uris: try uris(query: query), connectionName: name,
                                                          reconnectInitialDelay: .milliseconds(200)),
                                stateChanged: stateChanged)
        try await client.start()
        do {
            let result = try await body(client)
            for q in queues { _ = try? await client.deleteQueue(name: q) }
            await client.close()
            return result
        } catch {
            for q in queues { _ = try? await client.deleteQueue(name: q) }
            await client.close()
            throw error
        }
    }

    /// Runs `ops/broker ctl ARGS` against the broker of the first URL; returns stdout.
    static func ctl(_ args: [String]) throws -> String { try LocalBroker.ctl(args) }

    /// Suspends (or resumes) a classic queue's Erlang process in the default vhost, so that it stops
    /// confirming publishes: the way to hold publishes in flight.
    static func suspendQueue(_ name: String, _ suspend: Bool) throws {
        let expr = "{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"\(name)\">>)), "
            + "sys:\(suspend ? "suspend" : "resume")(amqqueue:get_pid(Q))."
        let out = try ctl(["eval", expr])
        if !out.contains("ok") { throw AMQPError.protocolError("rabbitmqctl eval failed: \(out)") }
    }

    /// Closes, from the broker side, the connection whose client-provided name is `name`.
    static func closeConnection(named name: String) throws -> Bool {
        let listing = try ctl(["list_connections", "pid", "client_properties", "-s"])
        guard let line = listing.split(separator: "\n").first(where: { $0.contains(name) }),
              let pid = line.split(separator: "\t").first else { return false }
        _ = try ctl(["close_connection", String(pid), "closed by the AMQP reconnect test"])
        return true
    }
}

/// Collects values from handlers running on other threads; tests poll it with a deadline.
final class Mailbox<T: Sendable>: Sendable {
    private let items = Locked<[T]>([])

    func put(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }

    /// Waits until at least `count` items arrived (or `seconds` passed); returns them all.
    @discardableResult
    func wait(for count: Int, seconds: Double = 5) async throws -> [T] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            let now = all
            if now.count >= count { return now }
            try await Task.sleep(for: .milliseconds(20))
        }
        return all
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
