// amqps against the local broker's TLS listener (ops/broker: 127.0.0.1 and 127.0.0.2 on DARKROOM_BROKER_TLS_PORT,
// default the plain port + 10), with the certificates ops/tls-certs made: server verification on by default, a
// wrong CA and a wrong host refused with a message that says which, client-certificate login (SASL EXTERNAL).
import Foundation
import Testing
import TestSupport
@testable import AMQP

@Suite(.serialized)
struct TLSTests {
    static var certs: String { LocalBroker.tlsCerts }
    static func tlsPort() throws -> Int { LocalBroker.tlsPort }

    /// amqps://guest:guest@HOST:PORT/?QUERY
    static func uri(host: String = "localhost", _ query: String) throws -> AMQPURI {
        try AMQPURI("amqps://guest:guest@\(host):\(tlsPort())/?connection_timeout=5000" + (query.isEmpty ? "" : "&" + query))
    }

    /// The error opening a connection to `uri` gives, as a person reads it.
    static func refusal(_ uri: AMQPURI) -> String? {
        do {
            let c = try Connection(uri: uri, connectionName: Broker.unique("tls-refused"))
            c.close()
            return nil
        } catch {
            print("TLSTests: \(uri.host) refused: \(error)")
            return "\(error)"
        }
    }

    /// The broker's view of the connection named `name`: "ssl auth_mechanism user".
    static func brokerView(of name: String) throws -> String? {
        let listing = try Broker.ctl(["list_connections", "ssl", "auth_mechanism", "user", "client_properties", "-s"])
        return listing.split(separator: "\n").first { $0.contains(name) }
            .map { $0.split(separator: "\t").prefix(3).joined(separator: " ") }
    }

    @Test("amqps with the test CA: publish, consume and ack over TLS; the broker lists the connection as ssl")
    func roundTripOverTLS() async throws {
        let uri = try Self.uri("cacertfile=\(Self.certs)/ca.pem")
        #expect(uri.verifyPeer)    // on by default
        let name = Broker.unique("tls-conn")
        let queue = Broker.unique("tls-q")
        let client = AMQPClient(settings: ClientSettings(uris: [uri], connectionName: name))
        try await client.start()
        _ = try await client.declareQueue(name: queue, durable: false, autoDelete: false)
        let (got, gotIt) = AsyncStream.makeStream(of: [UInt8].self)
        _ = try await client.consume(queue: queue, prefetch: 1) { d in
            client.ack(d, completion: nil)
            gotIt.yield(d.body)
        }
        _ = try await client.publish(exchange: "", routingKey: queue, body: Array("over tls".utf8))
        var it = got.makeAsyncIterator()
        #expect(await it.next() == Array("over tls".utf8))
        #expect(try Self.brokerView(of: name) == "true PLAIN guest")
        _ = try await client.deleteQueue(name: queue)
        await client.close()
    }

    @Test("server verification is on by default: without cacertfile the system CAs do not trust the test broker")
    func verificationOnByDefault() throws {
        let message = try #require(Self.refusal(try Self.uri("")))
        #expect(message.contains("system CA bundle"), "\(message)")
    }

    @Test("a CA that did not sign the broker's certificate is refused, and the message names that CA file")
    func wrongCARefused() throws {
        let ca = "\(Self.certs)/other-ca.pem"
        let message = try #require(Self.refusal(try Self.uri("cacertfile=\(ca)")))
        #expect(message.contains("amqps://localhost:"), "\(message)")
        #expect(message.contains(ca), "\(message)")
        #expect(message.contains("TLS"), "\(message)")
    }

    @Test("a host the certificate does not name is refused; verify_none connects, so it was the check")
    func wrongHostRefused() throws {
        let message = try #require(Self.refusal(try Self.uri(host: "127.0.0.2", "cacertfile=\(Self.certs)/ca.pem")))
        #expect(message.contains("'127.0.0.2'"), "\(message)")
        #expect(message.contains("TLS"), "\(message)")
        #expect(Self.refusal(try Self.uri(host: "127.0.0.2", "cacertfile=\(Self.certs)/ca.pem&verify=verify_none")) == nil)
        // rabbitmq-c 0.11 matches DNS names only: the certificate's IP 127.0.0.1 does not count, and the message says so.
        let byAddress = try #require(Self.refusal(try Self.uri(host: "127.0.0.1", "cacertfile=\(Self.certs)/ca.pem")))
        #expect(byAddress.contains("does not match IP addresses"), "\(byAddress)")
    }

    @Test("client-certificate login (EXTERNAL): the broker's user is the certificate's CN, no password sent")
    func externalLogin() throws {
        let user = LocalBroker.tlsClientUser
        _ = try Broker.ctl(["add_user", user, UUID().uuidString])    // "already exists" on a rerun is fine
        _ = try Broker.ctl(["set_permissions", user, ".*", ".*", ".*"])
        var uri = try Self.uri("cacertfile=\(Self.certs)/ca.pem&certfile=\(Self.certs)/client.pem"
                               + "&keyfile=\(Self.certs)/client.key&auth_mechanism=external")
        uri.password = "not-the-password"
        let name = Broker.unique("tls-external")
        let c = try Connection(uri: uri, connectionName: name)
        defer { c.close() }
        let ch = try c.openChannel()
        try c.closeChannel(ch)
        #expect(try Self.brokerView(of: name) == "true EXTERNAL \(user)")
    }

    @Test("EXTERNAL needs a client certificate: refused when parsing the URI, and by the broker without one")
    func externalNeedsACertificate() throws {
        #expect(throws: AMQPError.self) { try Self.uri("cacertfile=\(Self.certs)/ca.pem&auth_mechanism=external") }
        // A certificate of the broker's CA whose CN is no user: TLS is fine, the login is refused, and the message says why.
        let uri = try Self.uri("cacertfile=\(Self.certs)/ca.pem&certfile=\(Self.certs)/stranger.pem"
                               + "&keyfile=\(Self.certs)/stranger.key&auth_mechanism=external")
        let message = try #require(Self.refusal(uri))
        #expect(message.contains("ACCESS_REFUSED") || message.contains("during login"), "\(message)")
        #expect(message.contains("client certificate"), "\(message)")
    }
}
