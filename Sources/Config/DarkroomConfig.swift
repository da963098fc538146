// DarkroomConfig: the typed configuration of darkroomd / darkroom and its built-in defaults.
// Every key is documented in config/darkroom.toml; loading lives in ConfigLoader.swift.

/// The whole configuration. A plain value: load it once, hand copies to whoever needs them.
public struct DarkroomConfig: Sendable, Equatable {
    public enum QueueType: String, Sendable, Equatable, CaseIterable {
        case classic, quorum
    }

    public struct Broker: Sendable, Equatable {
        /// AMQP URIs tried in this order (failover).
        public var urls: [String]
        /// File holding `user:password` or just the password for the URLs' user; nil: use the URLs as given.
        public var credentialsFile: String?
        /// AMQP heartbeat in seconds (0 disables).
        public var heartbeat: Int
        /// Largest AMQP frame in bytes.
        public var frameMax: Int
        /// Ceiling of the exponential reconnect backoff, in seconds.
        public var reconnectMaxBackoff: Int
        /// amqps only: the CA bundle that verifies the broker (nil: the system's), the client certificate and
        /// key (nil: none), whether to verify the broker, and how to log in (`external`: with the certificate).
        /// An amqps URL's own query parameters (cacertfile, certfile, keyfile, verify, auth_mechanism) win.
        public var tlsCAFile: String? = nil
        public var tlsCertFile: String? = nil
        public var tlsKeyFile: String? = nil
        public var tlsVerify: Bool = true
        public var authMechanism: AuthMechanism = .plain
    }

    public enum AuthMechanism: String, Sendable, Equatable, CaseIterable {
        case plain, external
    }

    /// A size class: a pixel budget with its own queue and batching limits.
    public struct SizeClass: Sendable, Equatable {
        public var name: String
        /// width x height must not exceed this.
        public var maxPixels: Int
        /// Optional per-side limits (nil: only the pixel budget counts).
        public var maxWidth: Int?
        public var maxHeight: Int?
        /// Most jobs in one engine batch.
        public var maxBatch: Int
        /// How long a lone job waits for batch-mates, in milliseconds.
        public var batchWindowMs: Int
        /// basic.qos prefetch of this class's consumer.
        public var prefetch: Int
        /// Relative share of engine time when several classes have work (fair scheduling).
        public var weight: Int
        /// Where this class's PNGs go when a job names no store (nil: `output.store`).
        public var store: StoreName? = nil

        public init(name: String, maxPixels: Int, maxWidth: Int? = nil, maxHeight: Int? = nil,
                    maxBatch: Int, batchWindowMs: Int, prefetch: Int, weight: Int = 1) {
            self.name = name
            self.maxPixels = maxPixels
            self.maxWidth = maxWidth
            self.maxHeight = maxHeight
            self.maxBatch = maxBatch
            self.batchWindowMs = batchWindowMs
            self.prefetch = prefetch
            self.weight = weight
        }

        /// Whether an image of this size fits the class's budget.
        public func admits(width: Int, height: Int) -> Bool {
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            guard width > 0, height > 0, !overflow, pixels <= maxPixels else { return false }
            if let w = maxWidth, width > w { return false }
            if let h = maxHeight, height > h { return false }
            return true
        }
    }

    public struct Worker: Sendable, Equatable {
        /// Names of the classes this instance consumes, in the order given.
        public var consume: [String]
        /// Worker id reported in `accepted` events (default `<hostname>-<pid>`).
        public var id: String
        /// Seconds a SIGTERM waits for the running batch before requeueing the rest.
        public var drainDeadline: Int
        /// Memory budget in MiB for the memory guard; 0 = automatic (see `memoryBudgetBytes`).
        public var memoryBudgetMB: Int
        /// Most progress events per second per job.
        public var progressMaxHz: Double
        /// Engine threads; 0 = one per CPU core (see `engineThreads`).
        public var threads: Int
    }

    public enum LogLevel: String, Sendable, Equatable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        /// journal when stderr is connected to the journal (JOURNAL_STREAM), text otherwise.
        case auto, journal, text
    }

    public struct Log: Sendable, Equatable {
        public var level: LogLevel
        public var format: LogFormat
    }

    public var broker: Broker
    /// Prefix of every exchange and queue name.
    public var namespace: String
    public var queueType: QueueType
    /// `x-max-priority` of classic job queues.
    public var maxPriority: Int
    /// `x-delivery-limit` of quorum job queues.
    public var deliveryLimit: Int
    /// The size classes, ordered by `maxPixels` ascending.
    public var classes: [SizeClass]
    public var worker: Worker
    public var stateDir: String
    public var cacheDir: String
    public var seedsDir: String
    /// Folder holding one sub-folder per model (`<modelDir>/<name>`).
    public var modelDir: String
    /// Models this worker serves (folder names under `modelDir`).
    public var models: [String]
    /// Model used when a job names none; always one of `models`.
    public var defaultModel: String
    public var log: Log
    /// `[autoscale]`: how `darkroom autoscale` scales each class's workers (Autoscale.swift).
    public var autoscale: Autoscale = Autoscale()
    /// `[text]`: prompt handling of text-to-image models.
    public var text: Text = Text()
    /// `[metrics]`: the HTTP listener for Prometheus and health probes.
    public var metrics: Metrics = Metrics()

    public struct Metrics: Sendable, Equatable {
        /// `host:port` of the listener serving GET /metrics, /healthz and /readyz; empty: no listener.
        /// Port 0 takes a free port (logged on the "metrics" line).
        public var listen: String = ""

        /// `listen` split into its IP literal and port; nil when empty.
        public var endpoint: ListenAddress? { ListenAddress(listen) }
    }

    /// A listen address: an IPv4 literal, a bracketed IPv6 literal, or `localhost`, then `:port`.
    public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        public var isIPv6: Bool

        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 {
                host = String(host.dropFirst().dropLast())
                guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.contains(":") else { return nil }
                isIPv6 = true
            } else {
                if host == "localhost" { host = "127.0.0.1" }
                let parts = host.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && (UInt8($0) != nil) }) else { return nil }
                isIPv6 = false
            }
            self.host = host
            self.port = port
        }

        public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// `[precision]`: model name → "bf16", "fp16" or "fp32", the precision its weights are held in; a model not
    /// listed keeps its files' own.
    public var precision: [String: String] = [:]
    /// The precisions `[precision]` accepts.
    public static let precisions = ["bf16", "fp16", "fp32"]
    /// `[webhook]`: signing secrets and retries of the jobs' webhooks (DeliveryConfig.swift).
    public var webhook: Webhook = Webhook()
    /// `[output]`: where results go when not inline.
    public var output: Output = Output()

    public struct Text: Sendable, Equatable {
        /// Byte budget of the prompt-embedding cache (LRU), in MiB; 0 turns it off.
        public var cacheMB: Int = 256
    }
}

// MARK: - Built-in defaults

extension DarkroomConfig {
    public static let defaultPath = "/etc/darkroom/darkroom.toml"
    public static let defaultBrokerURL = "amqp://guest:guest@127.0.0.1:5672/"
    public static let defaultModelName = "tiny-shapes"

    /// The built-in size classes: small <= 256x256, medium <= 512x512, large <= 1024x1024.
    public static let defaultClasses: [SizeClass] = [
        SizeClass(name: "small", maxPixels: 256 * 256, maxBatch: 8, batchWindowMs: 200, prefetch: 16),
        SizeClass(name: "medium", maxPixels: 512 * 512, maxBatch: 4, batchWindowMs: 200, prefetch: 8),
        SizeClass(name: "large", maxPixels: 1024 * 1024, maxBatch: 1, batchWindowMs: 0, prefetch: 2),
    ]

    /// The configuration used when no file and no environment variable says otherwise.
    /// Machine-dependent parts: `worker.id` (hostname-pid), `model_dir` (next to the executable),
    /// `broker.credentials_file` (`$CREDENTIALS_DIRECTORY/broker` when systemd passed one).
    public static func builtInDefaults(environment: [String: String] = [:]) -> DarkroomConfig {
        let stateDir = "/var/lib/darkroom"
        return DarkroomConfig(
            broker: Broker(urls: [defaultBrokerURL],
                           credentialsFile: Paths.systemdCredential(environment: environment),
                           heartbeat: 30, frameMax: 131_072, reconnectMaxBackoff: 30,
                           tlsCAFile: Paths.systemdCredential(environment: environment, name: "broker-ca.pem"),
                           tlsCertFile: Paths.systemdCredential(environment: environment, name: "broker-cert.pem"),
                           tlsKeyFile: Paths.systemdCredential(environment: environment, name: "broker-key.pem")),
            namespace: "darkroom", queueType: .classic, maxPriority: 10, deliveryLimit: 5,
            classes: defaultClasses,
            worker: Worker(consume: defaultClasses.map(\.name), id: Paths.defaultWorkerID(),
                           drainDeadline: 60, memoryBudgetMB: 0, progressMaxHz: 4, threads: 0),
            stateDir: stateDir, cacheDir: "/var/cache/darkroom", seedsDir: stateDir + "/seeds",
            modelDir: Paths.builtInModelDir(), models: [defaultModelName], defaultModel: defaultModelName,
            log: Log(level: .info, format: .auto))
    }
}

// MARK: - Derived values

extension DarkroomConfig {
    public func sizeClass(named name: String) -> SizeClass? {
        classes.first { $0.name == name }
    }

    /// The smallest class whose budget admits this size (the class a job of that size belongs to).
    public func sizeClass(width: Int, height: Int) -> SizeClass? {
        classes.first { $0.admits(width: width, height: height) }
    }

    /// The classes this instance consumes, in `worker.consume` order.
    public var consumedClasses: [SizeClass] {
        worker.consume.compactMap { sizeClass(named: $0) }
    }

    /// Folder of one model (`<modelDir>/<name>`).
    public func modelPath(_ name: String) -> String {
        modelDir.hasSuffix("/") ? modelDir + name : modelDir + "/" + name
    }

}

extension DarkroomConfig.Worker {
    /// The memory budget in bytes: the configured MiB, or 3/4 of physical memory when 0.
    public var memoryBudgetBytes: UInt64 {
        memoryBudgetMB > 0 ? UInt64(memoryBudgetMB) << 20 : Paths.physicalMemory() / 4 * 3
    }

    /// Engine threads: the configured count, or the number of active CPU cores when 0.
    public var engineThreads: Int {
        threads > 0 ? threads : Paths.activeProcessorCount()
    }
}
