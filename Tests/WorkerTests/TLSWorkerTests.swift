// darkroomd's broker.tls_* keys against the local broker's TLS listener (ops/broker, certificates by ops/tls-certs).
import AMQP
import Config
import Foundation
import Testing
import TestSupport
@testable import Worker

@Suite struct TLSWorkerTests {
    static func ctl(_ args: [String]) throws -> String { try LocalBroker.ctl(args) }

    @Test("a worker configured with broker.tls_* and auth_mechanism = external logs in with its certificate and serves a job")
    func workerServesOverTLSWithClientCertificateLogin() async throws {
        _ = try Self.ctl(["add_user", LocalBroker.tlsClientUser, UUID().uuidString])   // "already exists" on a rerun is fine
        _ = try Self.ctl(["set_permissions", LocalBroker.tlsClientUser, ".*", ".*", ".*"])
        let ns = uniqueNamespace(), dir = tempDir(), certs = LocalBroker.tlsCerts
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 50, broker: """
            urls = ["amqps://localhost:\(LocalBroker.tlsPort)/"]
            tls_ca_file = "\(certs)/ca.pem"
            tls_cert_file = "\(certs)/client.pem"
            tls_key_file = "\(certs)/client.key"
            auth_mechanism = "external"
            """)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)   // plain AMQP
        let worker = try await TestWorker(cfg)
        try await client.submit(job("tls-1", steps: 2), toClass: "tiny", id: "tls-1")
        #expect(await client.waitTerminal(["tls-1"]))
        #expect(client.terminal(of: "tls-1")?.kind == .completed)
        // The broker's view of the worker's connection: TLS, EXTERNAL, the certificate's user.
        let listing = try Self.ctl(["list_connections", "ssl", "auth_mechanism", "user", "client_properties", "-s"])
        let line = listing.split(separator: "\n").first { $0.contains("test-\(ns)") }
        #expect(line.map { $0.split(separator: "\t").prefix(3).joined(separator: " ") } == "true EXTERNAL \(LocalBroker.tlsClientUser)",
                "\(listing)")
        try await worker.stop()
        await client.cleanUp()
    }

    @Test("a wrong CA in broker.tls_ca_file: the worker cannot start, and the error names the CA file")
    func wrongCAInConfigIsRefused() async throws {
        let ns = uniqueNamespace(), dir = tempDir(), certs = LocalBroker.tlsCerts
        let cfg = try testConfig(namespace: ns, state: dir, broker: """
            urls = ["amqps://localhost:\(LocalBroker.tlsPort)/?connection_timeout=5000"]
            tls_ca_file = "\(certs)/other-ca.pem"
            """)
        let client = AMQP.AMQPClient(settings: try cfg.clientSettings(name: "tls-wrong-ca"))
        do {
            try await client.start()
            Issue.record("connected with a CA that did not sign the broker's certificate")
            await client.close()
        } catch {
            #expect("\(error)".contains("\(certs)/other-ca.pem"), "\(error)")
        }
    }
}
