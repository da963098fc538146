// Real servers for the delivery tests, started by the test on free loopback ports: a webhook receiver
// (Python's http.server, webhook_receiver.py; https with test certificates; PUTs counted for upload retries),
// test certificates (ops/tls-certs) and an S3-compatible server (moto's server mode with request
// authentication on, s3_server.py).
import Foundation
import Glibc

public struct HelperError: Error, CustomStringConvertible {
    public let description: String
}

/// A helper process that prints "READY <port>" once it listens, then optionally answers line commands.
final class LineProcess: @unchecked Sendable {
    let process = Process()
    private let stdin = Pipe(), stdout = Pipe()
    let port: Int

    init(python: String, script: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repoRoot + "/Tests/TestSupport/" + script] + arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard let line = Self.readLine(stdout.fileHandleForReading), line.hasPrefix("READY "), let port = Int(line.dropFirst(6)) else {
            process.terminate()
            throw HelperError(description: "\(script) did not start (run ops/deps: it installs what the test servers need)")
        }
        self.port = port
    }

    /// One command, one JSON line back.
    func ask(_ command: String) throws -> [String: any Sendable] {
        stdin.fileHandleForWriting.write(Data((command + "\n").utf8))
        guard let line = Self.readLine(stdout.fileHandleForReading),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: any Sendable] else {
            throw HelperError(description: "no answer to \(command)")
        }
        return object
    }

    /// SIGKILL (the test process may hand its children a signal mask that blocks SIGTERM), then reaped by
    /// Foundation's child monitor (waitUntilExit spins a run loop, which a test's cooperative thread does not
    /// have). The helpers also exit when their stdin closes, so none outlives a crashed test run.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
    }

    deinit { stop() }

    /// Reads up to a newline (blocking; the helpers answer at once).
    static func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        var b: UInt8 = 0
        while read(handle.fileDescriptor, &b, 1) == 1 {
            if b == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

/// Runs blocking helper I/O on a thread of its own (never on the tests' cooperative threads, which an in-process
/// worker needs).
func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        Thread.detachNewThread { done.resume(with: Result { try body() }) }
    }
}

/// One POST the receiver got, with its own verdict on the signature.
public struct ReceivedPost: Sendable {
    public let n: Int
    /// POST (a webhook event) or PUT (an upload).
    public let method: String
    public let status: Int
    /// The receiver's check: HMAC-SHA256 over "<timestamp>.<body>" with the secret, timestamp within 5 minutes.
    public let valid: Bool
    public let headers: [String: String]
    public let body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

/// webhook_receiver.py: answers 503 to the first `failFirst` requests, then 200 to validly signed posts (401
/// otherwise) and to every PUT; over https when given a certificate.
public final class WebhookReceiver: @unchecked Sendable {
    let helper: LineProcess
    let log: String
    let scheme: String
    public var port: Int { helper.port }
    public var url: String { "\(scheme)://127.0.0.1:\(helper.port)/hooks/darkroom" }
    /// The server as an S3 endpoint (uploads go to `<endpoint>/<bucket>/<key>`).
    public var endpoint: String { "\(scheme)://127.0.0.1:\(helper.port)" }

    private init(helper: LineProcess, log: String, scheme: String) {
        self.helper = helper
        self.log = log
        self.scheme = scheme
    }

    /// - tls: the server's certificate and key (PEM): serve https.
    public static func start(secret: String, directory: String, failFirst: Int = 0,
                             tls: (certificate: String, key: String)? = nil) async throws -> WebhookReceiver {
        let log = directory + "/webhook-posts.jsonl"
        var arguments = ["--secret", secret, "--log", log, "--fail-first", String(failFirst)]
        if let tls { arguments += ["--tls-cert", tls.certificate, "--tls-key", tls.key] }
        let helper = try await offThread { [arguments] in
            try LineProcess(python: "/usr/bin/python3", script: "webhook_receiver.py", arguments: arguments)
        }
        return WebhookReceiver(helper: helper, log: log, scheme: tls == nil ? "http" : "https")
    }

    public var posts: [ReceivedPost] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let n = o["n"] as? Int, let status = o["status"] as? Int, let valid = o["valid"] as? Bool,
                  let headers = o["headers"] as? [String: String], let b64 = o["body"] as? String,
                  let body = Data(base64Encoded: b64) else { return nil }
            return ReceivedPost(n: n, method: o["method"] as? String ?? "POST", status: status, valid: valid, headers: headers,
                                body: [UInt8](body))
        }
    }

    public func stop() { helper.stop() }
}

/// s3_server.py: moto with authentication on, a bucket, and a key written to `credentials`.
public final class S3Server: @unchecked Sendable {
    let helper: LineProcess
    public let bucket: String
    public let credentialsFile: String
    public var endpoint: String { "http://127.0.0.1:\(helper.port)" }

    private init(helper: LineProcess, bucket: String, credentialsFile: String) {
        self.helper = helper
        self.bucket = bucket
        self.credentialsFile = credentialsFile
    }

    public static func start(bucket: String, directory: String) async throws -> S3Server {
        let credentials = directory + "/s3.secret"
        let helper = try await offThread {
            try LineProcess(python: try python(), script: "s3_server.py", arguments: ["--bucket", bucket, "--credentials", credentials])
        }
        return S3Server(helper: helper, bucket: bucket, credentialsFile: credentials)
    }

    /// The SHA-256 (hex), size and content type of an object, read back with boto3.
    public func object(_ key: String) async throws -> (sha256: String, bytes: Int, contentType: String?) {
        let helper = self.helper
        let o = try await offThread { try helper.ask("GET \(key)") as [String: any Sendable] }
        guard let sha = o["sha256"] as? String, let bytes = o["bytes"] as? Int else {
            throw HelperError(description: "GET \(key): \(o["error"] ?? "?")")
        }
        return (sha, bytes, o["content_type"] as? String)
    }

    public func keys() async throws -> [String] {
        let helper = self.helper
        return (try await offThread { try helper.ask("LIST") as [String: any Sendable] }["keys"] as? [String]) ?? []
    }

    public func stop() { helper.stop() }

    /// A python3 that has moto[server] and boto3: $DARKROOM_S3_PYTHON, the checkout's .state/s3-venv (ops/deps
    /// makes it when the system's python3 lacks them), or the python3 on PATH.
    static func python() throws -> String {
        var candidates = [repoRoot + "/.state/s3-venv/bin/python3"]
        if let p = ProcessInfo.processInfo.environment["DARKROOM_S3_PYTHON"] { candidates.insert(p, at: 0) }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            candidates.append("\(dir)/python3")
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: c)
            p.arguments = ["-c", "import moto.server, boto3"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return c }
        }
        throw HelperError(description: "no python3 with moto[server] and boto3 (tried \(candidates.joined(separator: ", "))); run ops/deps")
    }
}

/// Test certificates made by ops/tls-certs in `directory`: ca.pem, server.pem/.key (localhost, 127.0.0.1),
/// other-ca.pem. Returns the directory.
public func makeTestCertificates(_ directory: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: repoRoot + "/ops/tls-certs")
    p.arguments = [directory]
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw HelperError(description: "ops/tls-certs \(directory) exited \(p.terminationStatus)") }
    return directory
}
