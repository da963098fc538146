import AMQP
import Config
import Delivery
import Foundation
import Jobs
import TestSupport
import Testing
@testable import Worker

// Webhooks and stored results against real servers started here: a Python http.server receiver that checks
// every signature itself, and moto's S3 server with request authentication on (a bad Signature V4 is a 403).
@Suite(.serialized) struct DeliveryEndToEndTests {
    static let secret = "9f2c1e8a7b6d5c4e3f2a1b0c9d8e7f6a"

    /// A config with a webhook secret `hook-a` and what `extra` adds (TOML tables).
    func config(_ ns: String, _ dir: String, extra: String = "") throws -> DarkroomConfig {
        try "# test secrets\nhook-a = \(Self.secret)\n".write(toFile: dir + "/webhook.secrets", atomically: true, encoding: .utf8)
        return try testConfig(namespace: ns, state: dir, windowMs: 0, extra: """
            [webhook]
            secrets_file = "\(dir)/webhook.secrets"
            max_attempts = 5
            max_backoff = 1
            \(extra)
            """)
    }

    /// Every event of the job reaches the webhook in reply-queue order, byte for byte, each validly signed (the
    /// receiver's own HMAC check and ours), with the delivery ids counting up; the receiver's first two answers
    /// are 503, so the first event is retried and the order still holds.
    @Test func aWebhookReceivesEverySignedEventInOrder() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let receiver = try await WebhookReceiver.start(secret: Self.secret, directory: dir, failFirst: 2)
        defer { receiver.stop() }
        let cfg = try config(ns, dir)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let hook = "\"webhook\":{\"url\":\"\(receiver.url)\",\"events\":[\"accepted\",\"progress\",\"image\",\"completed\",\"failed\"],\"secret_ref\":\"hook-a\"}"
        try await client.submit(job("hooked", steps: 3, extra: ",\"count\":2,\(hook)"), toClass: "tiny", id: "hooked")
        #expect(await client.waitTerminal(["hooked"]))
        let events = client.all.filter { $0.event.jobID == "hooked" }
        let kinds = events.map(\.event.kind)
        #expect(kinds.first == .accepted && kinds.contains(.progress) && kinds.suffix(3) == [.image, .image, .completed])
        #expect(await client.wait(timeout: 60) { receiver.posts.filter { $0.status == 200 }.count >= events.count })
        let posts = receiver.posts
        let delivered = posts.filter { $0.status == 200 }
        #expect(posts.prefix(2).allSatisfy { $0.status == 503 && $0.header("X-Darkroom-Delivery") == "hooked.1" })
        #expect(delivered.count == events.count)
        #expect(delivered.map { $0.header("X-Darkroom-Event") ?? "" } == events.map(\.event.kind.rawValue))
        #expect(delivered.map { $0.header("X-Darkroom-Delivery") ?? "" } == (1...events.count).map { "hooked.\($0)" })
        for (post, seen) in zip(delivered, events) {
            #expect(post.valid, "the receiver refused the signature of \(post.header("X-Darkroom-Delivery") ?? "?")")
            #expect(post.body == seen.delivery.body)
            #expect(post.header("Content-Type") == seen.delivery.properties.contentType)
            #expect(post.header("X-Darkroom-Job") == "hooked")
            let ts = post.header("X-Darkroom-Timestamp") ?? ""
            let mac = Digest.hex(Digest.hmacSHA256(key: Array(Self.secret.utf8), Array("\(ts).".utf8) + post.body))
            #expect(post.header("X-Darkroom-Signature") == "sha256=" + mac)
        }
        #expect(delivered.filter { $0.header("X-Darkroom-Event") == "image" }.map { $0.header("X-Darkroom-Index") } == ["0", "1"])
        // The receiver logs a post before it answers, so the worker's tally may lag by the last answer.
        let webhooks = worker.daemon.deliveries.webhooks
        #expect(await client.wait(timeout: 30) { webhooks.tally[.delivered] == events.count })
        #expect(webhooks.tally == [.delivered: events.count])
        try await worker.stop()
        await client.cleanUp()
    }

    /// A webhook nobody answers (connection refused): the job still completes on its reply queue with all its
    /// images; the webhook's first event is given up after its attempts and the rest of the job's are dropped,
    /// each counted.
    @Test func aJobWhoseWebhookIsDownStillCompletesOnItsReplyQueue() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try config(ns, dir)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let hook = "\"webhook\":{\"url\":\"http://127.0.0.1:1/down\",\"events\":[\"accepted\",\"image\",\"completed\"],\"secret_ref\":\"hook-a\"}"
        try await client.submit(job("downhook", steps: 3, extra: ",\"count\":2,\(hook)"), toClass: "tiny", id: "downhook")
        try await client.submit(job("plain", steps: 3), toClass: "tiny", id: "plain")
        #expect(await client.waitTerminal(["downhook", "plain"]))
        #expect(client.terminal(of: "downhook")?.kind == .completed)
        #expect(client.events(of: "downhook").compactMap(\.png).count == 2)
        #expect(client.terminal(of: "plain")?.kind == .completed)
        let webhooks = worker.daemon.deliveries.webhooks
        #expect(await client.wait(timeout: 60) { webhooks.pending == 0 && webhooks.tally[.failed] == 1 })
        #expect(webhooks.tally == [.failed: 1, .dropped: 3])   // accepted failed; image, image, completed dropped
        try await worker.stop()
        await client.cleanUp()
    }

    /// `output.store = "s3"`: each PNG is PUT to moto (which checks the Signature V4), and the `image` event carries
    /// the object's URL, key and SHA-256, which the bucket's copy matches.
    @Test func s3StoreUploadsEachPNGAndTheEventCarriesItsURLAndHash() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let s3 = try await S3Server.start(bucket: "darkroom-results", directory: dir)
        defer { s3.stop() }
        let cfg = try config(ns, dir, extra: """
            [output.s3]
            endpoint = "\(s3.endpoint)"
            bucket = "darkroom-results"
            region = "us-east-1"
            prefix = "runs/"
            credentials_file = "\(s3.credentialsFile)"
            """)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("tos3", steps: 3, extra: ",\"count\":2,\"output\":{\"store\":\"s3\"}"), toClass: "tiny", id: "tos3")
        #expect(await client.waitTerminal(["tos3"]))
        #expect(client.terminal(of: "tos3")?.kind == .completed)
        let stored = client.events(of: "tos3").compactMap { e -> ImageEvent? in if case .image(let i) = e { return i } else { return nil } }
        #expect(stored.count == 2)
        for image in stored {
            let result = try #require(image.stored)
            #expect(image.png.isEmpty)
            #expect(result.store == .s3)
            #expect(result.key == "runs/tos3/\(image.index).png")
            #expect(result.location == "\(s3.endpoint)/darkroom-results/runs/tos3/\(image.index).png")
            let object = try await s3.object(result.key ?? "")
            #expect(object.sha256 == result.sha256)
            #expect(object.bytes == result.bytes)
            #expect(object.contentType == "image/png")
        }
        #expect(try await s3.keys().sorted() == ["runs/tos3/0.png", "runs/tos3/1.png"])
        try await worker.stop()
        await client.cleanUp()
    }

    /// A key the server does not accept (wrong secret: moto answers 403 SignatureDoesNotMatch): the job ends with
    /// `failed`/`storage_failed` naming the store and the answer; it is answered and acked, never lost.
    @Test func anUploadThatCannotSucceedFailsTheJobWithStorageFailed() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let s3 = try await S3Server.start(bucket: "darkroom-results", directory: dir)
        defer { s3.stop() }
        let good = try String(contentsOfFile: s3.credentialsFile, encoding: .utf8)
        let keyID = good.split(separator: ":")[0]
        try "\(keyID):not-the-secret\n".write(toFile: dir + "/wrong.secret", atomically: true, encoding: .utf8)
        let cfg = try config(ns, dir, extra: """
            [output]
            store = "s3"
            [output.s3]
            endpoint = "\(s3.endpoint)"
            bucket = "darkroom-results"
            credentials_file = "\(dir)/wrong.secret"
            """)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("badkey", steps: 3), toClass: "tiny", id: "badkey")
        #expect(await client.waitTerminal(["badkey"]))
        let failure = try #require(client.terminal(of: "badkey")?.failure)
        #expect(failure.code == .storageFailed)
        #expect(failure.retryable)
        #expect(failure.message.contains("s3") && failure.message.contains("403"), "\(failure.message)")
        #expect(try await s3.keys().isEmpty)
        try await worker.stop()
        await client.cleanUp()
    }

    /// A class whose default store is `file`: the PNGs land in output.dir/<job>/<index>.png (no temporary file
    /// left), the events carry path and SHA-256, and the webhook gets those same stored events.
    @Test func fileStoreWritesEachPNGAndTheEventCarriesItsPathAndHash() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let out = dir + "/results"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let receiver = try await WebhookReceiver.start(secret: Self.secret, directory: dir)
        defer { receiver.stop() }
        var cfg = try config(ns, dir, extra: "[output]\ndir = \"\(out)\"")
        cfg.classes = cfg.classes.map { var c = $0; if c.name == "tiny" { c.store = .file }; return c }
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let hook = "\"webhook\":{\"url\":\"\(receiver.url)\",\"events\":[\"image\"],\"secret_ref\":\"hook-a\"}"
        try await client.submit(job("tofile", steps: 3, extra: ",\"count\":2,\(hook)"), toClass: "tiny", id: "tofile")
        #expect(await client.waitTerminal(["tofile"]))
        #expect(client.terminal(of: "tofile")?.kind == .completed)
        let stored = client.events(of: "tofile").compactMap { e -> ImageEvent? in if case .image(let i) = e { return i } else { return nil } }
        #expect(stored.count == 2)
        for image in stored {
            let result = try #require(image.stored)
            #expect(result.store == .file)
            #expect(result.location == "\(out)/tofile/\(image.index).png")
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: result.location)))
            #expect(Digest.hex(Digest.sha256(bytes)) == result.sha256)
            #expect(bytes.count == result.bytes)
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/tofile").sorted() == ["0.png", "1.png"])
        #expect(await client.wait(timeout: 30) { receiver.posts.count >= 2 })
        let posts = receiver.posts
        #expect(posts.allSatisfy { $0.valid })
        #expect(posts.map { $0.header("Content-Type") } == ["application/json", "application/json"])
        #expect(posts.map(\.body) == stored.map { $0.encoded().body })
        try await worker.stop()
        await client.cleanUp()
    }

    /// An https webhook whose certificate comes from a private CA that the machine trusts: the real darkroomd, in a
    /// mount namespace of its own where the system CA bundle (the file libcurl reads) is the machine's plus the
    /// test's CA, as update-ca-certificates would make it. The receiver gets the job's events over TLS, validly
    /// signed, byte for byte those of the reply queue. (DeliveryServerTests: the same receiver, untrusted, is refused.)
    @Test func anHTTPSWebhookFromATrustedPrivateCAReceivesTheSignedEvents() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = try makeTestCertificates(dir + "/certs")
        let receiver = try await WebhookReceiver.start(secret: Self.secret, directory: dir,
                                                       tls: (certs + "/server.pem", certs + "/server.key"))
        defer { receiver.stop() }
        #expect(receiver.url.hasPrefix("https://"))
        try "hook-a = \(Self.secret)\n".write(toFile: dir + "/webhook.secrets", atomically: true, encoding: .utf8)
        let system = "/etc/ssl/certs/ca-certificates.crt"
        let bundle = try String(contentsOfFile: system, encoding: .utf8) + "\n" + String(contentsOfFile: certs + "/ca.pem", encoding: .utf8)
        try bundle.write(toFile: dir + "/ca-bundle.crt", atomically: true, encoding: .utf8)
        let worker = try WorkerProcess(namespace: ns, state: dir, mounts: "mount --bind '\(dir)/ca-bundle.crt' '\(system)'", extraEnv: [
            "DARKROOM_WORKER_CONSUME": "small", "DARKROOM_WEBHOOK_SECRETS_FILE": dir + "/webhook.secrets",
        ])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        let hook = "\"webhook\":{\"url\":\"\(receiver.url)\",\"events\":[\"accepted\",\"image\",\"completed\"],\"secret_ref\":\"hook-a\"}"
        try await client.submit(job("tlshook", size: 32, steps: 3, extra: ",\(hook)"), toClass: "small", id: "tlshook")
        #expect(await client.waitTerminal(["tlshook"], timeout: 90), "\(worker.output)")
        let events = client.events(of: "tlshook").filter { [.accepted, .image, .completed].contains($0.kind) }
        #expect(events.map(\.kind) == [.accepted, .image, .completed])
        #expect(await client.wait(timeout: 60) { receiver.posts.count >= events.count }, "\(worker.output)")
        let posts = receiver.posts
        #expect(posts.map(\.status) == [200, 200, 200], "\(worker.output)")
        #expect(posts.allSatisfy { $0.valid })
        #expect(posts.map { $0.header("X-Darkroom-Event") ?? "" } == ["accepted", "image", "completed"])
        let bodies = client.all.filter { $0.event.jobID == "tlshook" && [.accepted, .image, .completed].contains($0.event.kind) }.map(\.delivery.body)
        #expect(posts.map(\.body) == bodies)
        worker.signal(SIGTERM)
        #expect(await worker.waitExit() == 0, "\(worker.output)")
        await client.cleanUp(classes: ["small", "medium", "large"])
    }
}
