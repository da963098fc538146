// The delivery clients against real servers started here (no broker, no engine): an https webhook receiver whose
// certificate comes from a CA this machine does not trust, moto's S3 server addressed virtual-hosted style, and
// uploads to a server that answers 503 before 200.
import Config
import Core
import Delivery
import Foundation
import Jobs
import TestSupport
import Testing

@Suite struct DeliveryServerTests {
    static let secret = "9f2c1e8a7b6d5c4e3f2a1b0c9d8e7f6a"

    static func tempDirectory() -> String {
        let dir = NSTemporaryDirectory() + "drdeliv-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func config(_ toml: String) throws -> DarkroomConfig {
        try DarkroomConfig.parse(toml: toml, source: .file("test.toml"))
    }

    /// An https receiver whose certificate is signed by a CA made by the test (so not in this machine's store): the
    /// client verifies the certificate and refuses it at the handshake, reports a `tls` error that says what to do,
    /// and does not retry (the receiver logs no request at all).
    @Test func anHTTPSWebhookFromAnUntrustedCAIsRefusedWithAClearErrorAndNotRetried() async throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = try makeTestCertificates(dir + "/certs")
        let receiver = try await WebhookReceiver.start(secret: Self.secret, directory: dir,
                                                       tls: (certs + "/server.pem", certs + "/server.key"))
        defer { receiver.stop() }
        #expect(receiver.url.hasPrefix("https://127.0.0.1:"))
        let reports = Locked<[WebhookDispatcher.Report]>([])
        let dispatcher = WebhookDispatcher(settings: .init(maxAttempts: 3, timeout: 10, firstBackoff: 0.05, maxBackoff: 0.1),
                                           secrets: ["hook-a": Array(Self.secret.utf8)]) { r in reports.withLock { $0.append(r) } }
        let event = CompletedEvent(id: "tlsjob", seeds: [1], timings: Timings(queue: 1, denoise: 1, decode: 1, encode: 1, total: 4)).encoded()
        dispatcher.post(event, to: Webhook(url: receiver.url, events: [.completed], secretRef: "hook-a"))
        await dispatcher.finish(deadline: Date().addingTimeInterval(30))
        let seen = reports.value
        #expect(!seen.contains { if case .retrying = $0 { true } else { false } }, "a certificate error was retried: \(seen)")
        guard case .outcome(let outcome, let job, let kind, let detail)? = seen.last else {
            Issue.record("no outcome reported: \(seen)")
            return
        }
        #expect(outcome == .failed && job == "tlsjob" && kind == .completed)
        #expect(detail.contains("TLS") && detail.contains("certificate") && detail.contains("127.0.0.1")
                && detail.contains("update-ca-certificates"), "\(detail)")
        #expect(receiver.posts.isEmpty)
        #expect(dispatcher.tally == [.failed: 1])
    }

    /// `output.s3.addressing = "virtual"`: the PUT goes to `<bucket>.localhost:<port>` (libcurl resolves *.localhost
    /// to loopback itself, RFC 6761), moto takes the bucket from the Host header and checks the Signature V4 over it;
    /// the object is in the bucket with the SHA-256 the result announces.
    @Test func virtualHostedStyleUploadsReachTheBucketNamedInTheHost() async throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s3 = try await S3Server.start(bucket: "darkroom-virtual", directory: dir)
        defer { s3.stop() }
        let port = try #require(URLComponents(string: s3.endpoint)?.port)
        let cfg = try Self.config("""
            [output]
            max_attempts = 1
            [output.s3]
            endpoint = "http://localhost:\(port)"
            bucket = "darkroom-virtual"
            addressing = "virtual"
            prefix = "v/"
            credentials_file = "\(s3.credentialsFile)"
            """)
        let stores = ResultStores(config: cfg)
        let png: [UInt8] = Array("\u{89}PNG virtual-hosted".utf8) + (0..<4000).map { UInt8($0 % 251) }
        let stored = try await stores.store(png, jobID: "vjob", index: 0, in: .s3)
        #expect(stored.location == "http://darkroom-virtual.localhost:\(port)/v/vjob/0.png")
        #expect(stored.key == "v/vjob/0.png")
        let object = try await s3.object("v/vjob/0.png")
        #expect(object.sha256 == stored.sha256)
        #expect(object.sha256 == Digest.hex(Digest.sha256(png)))
        #expect(object.bytes == png.count)
        #expect(try await s3.keys() == ["v/vjob/0.png"])
    }

    /// A server that answers 503 to the first two PUTs and 200 to the third: the upload succeeds on attempt 3, each
    /// failed attempt reported with its answer; with fewer attempts allowed it fails with the 503, marked retryable.
    /// (The store backs off 0.5 s, 1 s, ... doubling; it does not read Retry-After.)
    @Test(arguments: [(attempts: 3, succeeds: true), (attempts: 2, succeeds: false)])
    func anUploadAnswered503IsRetriedUpToMaxAttempts(attempts: Int, succeeds: Bool) async throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try await WebhookReceiver.start(secret: Self.secret, directory: dir, failFirst: 2)
        defer { server.stop() }
        try "AKIDTEST:secret-for-the-503-server\n".write(toFile: dir + "/s3.secret", atomically: true, encoding: .utf8)
        let cfg = try Self.config("""
            [output]
            max_attempts = \(attempts)
            [output.s3]
            endpoint = "\(server.endpoint)"
            bucket = "bkt"
            credentials_file = "\(dir)/s3.secret"
            """)
        let stores = ResultStores(config: cfg, firstBackoff: 0.05)
        let retried = Locked<[(String, Int)]>([])
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]
        do {
            let stored = try await stores.store(png, jobID: "r", index: 1, in: .s3) { error, attempt in
                retried.withLock { $0.append((error.message, attempt)) }
            }
            #expect(succeeds)
            #expect(stored.location == "\(server.endpoint)/bkt/r/1.png")
        } catch {
            #expect(!succeeds)
            #expect(error.code == .http && error.retryable && error.message.contains("HTTP 503"), "\(error)")
        }
        let puts = server.posts
        #expect(puts.map(\.method) == Array(repeating: "PUT", count: attempts))
        #expect(puts.map(\.status) == Array([503, 503, 200].prefix(attempts)))
        #expect(puts.allSatisfy { $0.body == png })
        #expect(retried.value.map(\.1) == Array(1..<attempts))
        #expect(retried.value.allSatisfy { $0.0.contains("HTTP 503") })
    }
}
