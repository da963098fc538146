// [webhook] and [output]: where a job's events and PNGs go besides its reply queue (docs/protocol.md,
// "Webhooks" and "Stored results"). Secrets live in files the worker reads (systemd credentials), never
// in this file's values or in jobs.
import Foundation

extension DarkroomConfig {
    /// Where a job's PNGs go when it does not say (`output.store`, `classes.<name>.store`).
    public enum StoreName: String, Sendable, Equatable, CaseIterable {
        case inline, file, s3
    }

    public struct Webhook: Sendable, Equatable {
        /// File of `name=secret` lines; `webhook.secret_ref` names a line. nil: no webhooks accepted.
        public var secretsFile: String?
        /// Posts of one event before it is given up (1..20).
        public var maxAttempts: Int = 5
        /// Seconds one post may take (1..300).
        public var timeout: Int = 10
        /// Ceiling of the exponential backoff between attempts, in seconds (1..3600).
        public var maxBackoff: Int = 30
    }

    public enum S3Addressing: String, Sendable, Equatable, CaseIterable {
        /// `<endpoint>/<bucket>/<key>`: MinIO, Ceph, moto, most S3-compatible servers.
        case path
        /// `<scheme>://<bucket>.<endpoint host>/<key>`: AWS's default.
        case virtual
    }

    public struct S3: Sendable, Equatable {
        /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, ...
        public var endpoint: String = ""
        public var bucket: String = ""
        public var region: String = "us-east-1"
        /// Prepended to every object key (`darkroom/` gives `darkroom/<job>/<index>.png`).
        public var prefix: String = ""
        /// File holding `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
        public var credentialsFile: String?
        public var addressing: S3Addressing = .path
    }

    public struct Output: Sendable, Equatable {
        /// Store of jobs that name none, unless their class sets one.
        public var store: StoreName = .inline
        /// Folder of the `file` store (a shared filesystem); nil: no file store.
        public var dir: String?
        /// Uploads (or writes) of one PNG before the job fails (1..20).
        public var maxAttempts: Int = 3
        /// nil: no s3 store.
        public var s3: S3?
    }

    /// The store of a job of class `name` that names none.
    public func defaultStore(forClass name: String) -> StoreName {
        sizeClass(named: name)?.store ?? output.store
    }

    static let deliveryKeys = [
        "webhook.secrets_file", "webhook.max_attempts", "webhook.timeout", "webhook.max_backoff",
        "output.store", "output.dir", "output.max_attempts",
        "output.s3.endpoint", "output.s3.bucket", "output.s3.region", "output.s3.prefix", "output.s3.credentials_file",
        "output.s3.addressing",
    ]

    static func buildDelivery(_ r: Reader, _ c: inout DarkroomConfig, environment: [String: String]) throws {
        // webhook
        c.webhook.secretsFile = try existingFile(r, "webhook.secrets_file") ?? Paths.systemdCredential(environment: environment, name: "webhook-secrets")
        c.webhook.maxAttempts = try r.int("webhook.max_attempts", 1...20) ?? c.webhook.maxAttempts
        c.webhook.timeout = try r.int("webhook.timeout", 1...300) ?? c.webhook.timeout
        c.webhook.maxBackoff = try r.int("webhook.max_backoff", 1...3600) ?? c.webhook.maxBackoff

        // output
        c.output.store = try r.choice("output.store", StoreName.self) ?? c.output.store
        if let dir = try r.path("output.dir") {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw r.fail(.notFound, "output.dir", "\(dir) is not a folder; create it (shared with the consumers) or leave the key out")
            }
            c.output.dir = dir
        }
        c.output.maxAttempts = try r.int("output.max_attempts", 1...20) ?? c.output.maxAttempts
        var s3 = S3()
        let s3Keys = deliveryKeys.filter { $0.hasPrefix("output.s3.") }
        if let anchor = s3Keys.first(where: r.has) {
            // A missing key is reported against where the section was given.
            func missing(_ key: String, _ problem: String) -> ConfigError {
                ConfigError(.missing, key: key, source: r.source(anchor), problem)
            }
            guard let bucket = try r.string("output.s3.bucket"), !bucket.isEmpty else {
                throw missing("output.s3.bucket", "the s3 store needs a bucket")
            }
            guard isBucketName(bucket) else {
                throw r.fail(.invalid, "output.s3.bucket", "\"\(bucket)\" is not an S3 bucket name (3..63 of [a-z0-9.-], starting and ending with a letter or digit)")
            }
            s3.bucket = bucket
            guard let endpoint = try r.string("output.s3.endpoint"), !endpoint.isEmpty else {
                throw missing("output.s3.endpoint", "the s3 store needs an endpoint, e.g. https://s3.eu-west-1.amazonaws.com")
            }
            guard let u = URLComponents(string: endpoint), let scheme = u.scheme, ["http", "https"].contains(scheme),
                  u.host?.isEmpty == false, u.path.isEmpty || u.path == "/", u.query == nil else {
                throw r.fail(.invalid, "output.s3.endpoint", "\"\(endpoint)\" must be an http:// or https:// URL with a host and no path")
            }
            s3.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            if let region = try r.string("output.s3.region") {
                guard isName(region, max: 64, extra: "-_") else {
                    throw r.fail(.invalid, "output.s3.region", "\"\(region)\" is not a region name such as us-east-1")
                }
                s3.region = region
            }
            if let prefix = try r.string("output.s3.prefix") {
                guard !prefix.hasPrefix("/"), prefix.utf8.count <= 512, !prefix.contains("..") else {
                    throw r.fail(.invalid, "output.s3.prefix", "\"\(prefix)\" must not start with '/' or contain '..' (at most 512 bytes)")
                }
                s3.prefix = prefix
            }
            s3.addressing = try r.choice("output.s3.addressing", S3Addressing.self) ?? s3.addressing
            s3.credentialsFile = try existingFile(r, "output.s3.credentials_file") ?? Paths.systemdCredential(environment: environment, name: "s3")
            guard s3.credentialsFile != nil else {
                throw missing("output.s3.credentials_file",
                              "the s3 store needs a file holding ACCESS_KEY_ID:SECRET_ACCESS_KEY (or the systemd credential \"s3\")")
            }
            c.output.s3 = s3
        }
        // Every default must be a store that exists.
        let defaults = [("output.store", c.output.store)] + c.classes.compactMap { cls in cls.store.map { ("classes.\(cls.name).store", $0) } }
        for (key, store) in defaults {
            if store == .file, c.output.dir == nil {
                throw r.fail(.invalid, key, "store \"file\" needs output.dir")
            }
            if store == .s3, c.output.s3 == nil {
                throw r.fail(.invalid, key, "store \"s3\" needs [output.s3] with a bucket, an endpoint and credentials")
            }
        }
    }

    /// A file path key whose file must exist; an empty value means none.
    private static func existingFile(_ r: Reader, _ key: String) throws -> String? {
        guard let s = try r.string(key), !s.isEmpty else { return nil }
        let path = Paths.resolve(s, relativeTo: r.source(key))
        guard FileManager.default.fileExists(atPath: path) else { throw r.fail(.notFound, key, "\(path) does not exist") }
        return path
    }

    static func isBucketName(_ s: String) -> Bool {
        (3...63).contains(s.count) && s.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "." || $0 == "-") }
            && s.first.map { $0.isLowercase || $0.isNumber } == true && s.last.map { $0.isLowercase || $0.isNumber } == true
    }
}

// MARK: - Secrets files

/// A problem with a secrets file; never shows a secret.
public struct SecretsError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension DarkroomConfig.Webhook {
    /// The webhook secrets by name: one `name=secret` per line (blank lines and `#` comments skipped; spaces
    /// around the name and the secret trimmed). Names: 1..64 of [A-Za-z0-9_.-].
    public func secrets() throws -> [String: [UInt8]] {
        guard let file = secretsFile else { return [:] }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.notFound, key: "webhook.secrets_file", source: .file(file), "cannot read the secrets file")
        }
        var out: [String: [UInt8]] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError(.invalid, key: "webhook.secrets_file", source: .file(file), "line \(n + 1) is not name=secret")
            }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces)
            let secret = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard DarkroomConfig.isName(name, max: 64, extra: "_.-"), !name.hasPrefix("."), !name.hasSuffix(".") else {
                throw ConfigError(.invalid, key: "webhook.secrets_file", source: .file(file),
                                  "line \(n + 1): the name must be 1..64 of [A-Za-z0-9_.-], not starting or ending with '.'")
            }
            guard secret.utf8.count >= 16 else {
                throw ConfigError(.invalid, key: "webhook.secrets_file", source: .file(file),
                                  "line \(n + 1) (\(name)): the secret is shorter than 16 bytes; use e.g. `openssl rand -hex 32`")
            }
            guard out[name] == nil else {
                throw ConfigError(.invalid, key: "webhook.secrets_file", source: .file(file), "line \(n + 1): \(name) is defined twice")
            }
            out[name] = Array(secret.utf8)
        }
        return out
    }
}

extension DarkroomConfig.S3 {
    /// The access key id and secret from `credentials_file` (`ACCESS_KEY_ID:SECRET_ACCESS_KEY`), read at each call
    /// so that a rotated key is picked up.
    public func credentials() throws -> (accessKeyID: String, secretAccessKey: String) {
        guard let file = credentialsFile else {
            throw ConfigError(.missing, key: "output.s3.credentials_file", source: .builtIn, "no S3 credentials file configured")
        }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.notFound, key: "output.s3.credentials_file", source: .file(file), "cannot read the credentials file")
        }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex else {
            throw ConfigError(.invalid, key: "output.s3.credentials_file", source: .file(file),
                              "the file must hold ACCESS_KEY_ID:SECRET_ACCESS_KEY on one line")
        }
        return (String(line[..<colon]), String(line[line.index(after: colon)...]))
    }
}
