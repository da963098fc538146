// ConfigTests: defaults, the shipped config/darkroom.toml, file + environment layering, errors, reload diff.
import Foundation
import Testing
@testable import Config

/// A scratch folder removed when the value goes away.
final class Scratch {
    let dir: String
    init() throws {
        dir = NSTemporaryDirectory() + "darkroom-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

let shippedConfig = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../config/darkroom.toml").standardized.path

func parse(_ toml: String?, _ env: [String: String] = [:]) throws -> DarkroomConfig {
    try DarkroomConfig.parse(toml: toml, source: toml == nil ? .builtIn : .file("/etc/test.toml"), environment: env)
}

/// The error thrown by `body`, or nil.
func configError(_ body: () throws -> DarkroomConfig) -> ConfigError? {
    do { _ = try body(); return nil } catch let e as ConfigError { return e } catch { return nil }
}

@Test func builtInDefaultsMatchTheDocumentedValues() {
    let c = DarkroomConfig.builtInDefaults()
    #expect(c.broker.urls == ["amqp://guest:guest@127.0.0.1:5672/"])
    #expect(c.broker.heartbeat == 30 && c.broker.frameMax == 131_072 && c.broker.reconnectMaxBackoff == 30)
    #expect(c.broker.credentialsFile == nil)
    #expect(c.namespace == "darkroom" && c.queueType == .classic && c.maxPriority == 10 && c.deliveryLimit == 5)
    #expect(c.classes.map(\.name) == ["small", "medium", "large"])
    #expect(c.classes.map(\.maxPixels) == [256 * 256, 512 * 512, 1024 * 1024])
    #expect(c.classes.map(\.maxBatch) == [8, 4, 1])
    #expect(c.sizeClass(named: "small")?.batchWindowMs == 200 && c.sizeClass(named: "small")?.prefetch == 16)
    #expect(c.worker.consume == ["small", "medium", "large"])
    #expect(c.worker.id.hasSuffix("-\(ProcessInfo.processInfo.processIdentifier)"))
    #expect(c.worker.drainDeadline == 60 && c.worker.progressMaxHz == 4)
    #expect(c.worker.engineThreads >= 1 && c.worker.memoryBudgetBytes > 0)
    #expect(c.stateDir == "/var/lib/darkroom" && c.cacheDir == "/var/cache/darkroom" && c.seedsDir == "/var/lib/darkroom/seeds")
    #expect(c.models == ["tiny-shapes"] && c.defaultModel == "tiny-shapes")
    #expect(c.log.level == .info && c.log.format == .auto)
    #expect(c.text.cacheMB == 256)
}

@Test func textCacheBudgetFromFileAndEnvironment() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-text-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("darkroom.toml").path
    try "[text]\ncache_mb = 64\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try DarkroomConfig.load(path: path, environment: [:]).text.cacheMB == 64)
    #expect(try DarkroomConfig.load(path: path, environment: ["DARKROOM_TEXT_CACHE_MB": "0"]).text.cacheMB == 0)
    #expect(throws: ConfigError.self) { try DarkroomConfig.load(path: path, environment: ["DARKROOM_TEXT_CACHE_MB": "-1"]) }
    try "[text]\ncache_megabytes = 64\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(throws: ConfigError.self) { try DarkroomConfig.load(path: path, environment: [:]) }
}

@Test func precisionPerModelFromFileAndEnvironment() throws {
    let toml = "models = [\"tiny-shapes\", \"sana-600m\"]\n[precision]\nsana-600m = \"bf16\"\n"
    #expect(try parse(toml).precision == ["sana-600m": "bf16"])
    #expect(try parse(nil).precision.isEmpty)
    #expect(try parse(toml, ["DARKROOM_PRECISION_SANA_600M": "fp32", "DARKROOM_PRECISION_TINY_SHAPES": "fp16"]).precision
            == ["sana-600m": "fp32", "tiny-shapes": "fp16"])
    let bad = #expect(throws: ConfigError.self) { try parse(toml.replacingOccurrences(of: "\"bf16\"", with: "\"int8\"")) }
    #expect(bad?.code == .invalid && bad?.key == "precision.sana-600m" && bad?.message.contains("\"int8\"") == true)
    let unserved = #expect(throws: ConfigError.self) { try parse(toml + "sdxl = \"bf16\"\n") }
    #expect(unserved?.message.contains("sdxl is not among models") == true)
    #expect(throws: ConfigError.self) { try parse(toml.replacingOccurrences(of: "\"bf16\"", with: "16")) }
}

@Test func builtInModelDirIsTheCheckoutModelsFolderWhenRunFromABuildTree() {
    // The test binary lives under <checkout>/.build*/..., so the checkout's models/ is found.
    let checkoutModels = URL(fileURLWithPath: shippedConfig).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models").path
    #expect(URL(fileURLWithPath: DarkroomConfig.builtInDefaults().modelDir).standardized.path == checkoutModels)
    #expect(DarkroomConfig.builtInDefaults().modelPath("tiny-shapes") == DarkroomConfig.builtInDefaults().modelDir + "/tiny-shapes")
    #expect(Paths.builtInModelDir(executablePath: "/nonexistent/bin/darkroomd") == "/usr/share/darkroom/models")
}

@Test func theShippedConfigParsesAndEqualsTheBuiltInDefaults() throws {
    let c = try DarkroomConfig.load(path: shippedConfig, environment: [:])
    #expect(c == DarkroomConfig.builtInDefaults())
}

@Test func withoutTheDefaultFileLoadFallsBackToDefaults() throws {
    let fallback = FileManager.default.fileExists(atPath: DarkroomConfig.defaultPath)
        ? try DarkroomConfig.load(path: DarkroomConfig.defaultPath, environment: [:])
        : DarkroomConfig.builtInDefaults()
    #expect(try DarkroomConfig.load(path: nil, environment: [:]) == fallback)
}

@Test func anExplicitPathThatDoesNotExistIsAnError() {
    let e = configError { try DarkroomConfig.load(path: "/nonexistent/darkroom.toml", environment: [:]) }
    #expect(e?.code == .notFound && e?.source == .file("/nonexistent/darkroom.toml"))
    #expect(e?.description.contains("/nonexistent/darkroom.toml") == true)
}

@Test func environmentOverridesListsScalarsAndNestedClassKeys() throws {
    let c = try parse(nil, [
        "DARKROOM_BROKER_URLS": "amqp://a:b@h1:5672/, amqps://h2/vh ,",
        "DARKROOM_STATE_DIR": "/srv/dr",
        "DARKROOM_CLASSES_SMALL_MAX_BATCH": "2",
        "DARKROOM_WORKER_CONSUME": "small,large",
        "DARKROOM_WORKER_PROGRESS_MAX_HZ": "2.5",
        "DARKROOM_QUEUE_TYPE": "quorum",
        "DARKROOM_LOG_LEVEL": "debug",
        "DARKROOM_BROKER_PORT": "5673",  // ops/broker's variable: not a config key, ignored
    ])
    #expect(c.broker.urls == ["amqp://a:b@h1:5672/", "amqps://h2/vh"])
    #expect(c.stateDir == "/srv/dr" && c.seedsDir == "/srv/dr/seeds")
    #expect(c.sizeClass(named: "small")?.maxBatch == 2 && c.sizeClass(named: "small")?.prefetch == 16)
    #expect(c.worker.consume == ["small", "large"] && c.consumedClasses.map(\.name) == ["small", "large"])
    #expect(c.worker.progressMaxHz == 2.5 && c.queueType == .quorum && c.log.level == .debug)
    #expect(DarkroomConfig.unrecognizedEnvironment(["DARKROOM_BROKER_PORT": "1", "DARKROOM_STATE_DIR": "/x"]) == ["DARKROOM_BROKER_PORT"])
    #expect(DarkroomConfig.environmentName(forKey: "classes.small.max_batch") == "DARKROOM_CLASSES_SMALL_MAX_BATCH")
}

@Test func environmentWinsOverTheFile() throws {
    let toml = "namespace = \"filens\"\n[broker]\nheartbeat = 10\n[classes.small]\nmax_batch = 3\n"
    let c = try parse(toml, ["DARKROOM_BROKER_HEARTBEAT": "2", "DARKROOM_CLASSES_SMALL_MAX_BATCH": "5"])
    #expect(c.namespace == "filens" && c.broker.heartbeat == 2 && c.sizeClass(named: "small")?.maxBatch == 5)
}

@Test func fileClassesReplaceTheBuiltInSetAndEnvironmentCanAddOne() throws {
    let toml = """
        [classes.thumb]
        max_width = 128
        max_height = 128
        max_batch = 16
        prefetch = 32
        [classes.small]
        max_batch = 2
        """
    let c = try parse(toml, ["DARKROOM_CLASSES_EXTRA_LARGE_MAX_PIXELS": "4194304"])
    #expect(c.classes.map(\.name) == ["thumb", "small", "extra_large"])
    #expect(c.sizeClass(named: "thumb")?.maxPixels == 128 * 128)
    #expect(c.sizeClass(named: "small")?.maxPixels == 65536 && c.sizeClass(named: "small")?.maxBatch == 2)
    #expect(c.worker.consume == ["thumb", "small", "extra_large"])
    #expect(c.sizeClass(width: 64, height: 64)?.name == "thumb")
    #expect(c.sizeClass(width: 256, height: 64)?.name == "small")  // 256 > max_width of thumb
    #expect(c.sizeClass(width: 2048, height: 2048)?.name == "extra_large")
    #expect(c.sizeClass(width: 4096, height: 4096) == nil)
}

@Test func defaultClassesRouteBySizeToTheSmallestBudget() {
    let c = DarkroomConfig.builtInDefaults()
    #expect(c.sizeClass(width: 256, height: 256)?.name == "small")
    #expect(c.sizeClass(width: 128, height: 512)?.name == "small")  // a pixel budget, not a side limit
    #expect(c.sizeClass(width: 264, height: 256)?.name == "medium")
    #expect(c.sizeClass(width: 1024, height: 1024)?.name == "large")
    #expect(c.sizeClass(width: 1024, height: 1032) == nil)
}

@Test func relativePathsInTheFileAreRelativeToItsFolder() throws {
    let scratch = try Scratch()
    let path = try scratch.write("d.toml", "state_dir = \"state\"\nmodel_dir = \"/abs/models\"\n")
    let c = try DarkroomConfig.load(path: path, environment: ["DARKROOM_CACHE_DIR": "rel-cache"])
    #expect(c.stateDir == scratch.dir + "/state" && c.seedsDir == scratch.dir + "/state/seeds")
    #expect(c.modelDir == "/abs/models" && c.cacheDir == "rel-cache")
}

/// Each bad input, the key its error must name, its code, and whether the source is the file or a variable.
@Test(arguments: [
    ("namespace = 5", [:], "namespace", ConfigError.Code.type, nil),
    ("queue_type = \"stream\"", [:], "queue_type", .invalid, nil),
    ("max_priority = 0", [:], "max_priority", .range, nil),
    ("[broker]\nheartbeat = \"30\"", [:], "broker.heartbeat", .type, nil),
    ("[broker]\nurls = []", [:], "broker.urls", .invalid, nil),
    ("[broker]\nurls = [\"http://x/\"]", [:], "broker.urls", .invalid, nil),
    ("[broker]\nurls = [1]", [:], "broker.urls", .type, nil),
    ("[broker]\ncredentials_file = \"/nonexistent/secret\"", [:], "broker.credentials_file", .notFound, nil),
    ("[broker]\nfram_max = 4096", [:], "broker.fram_max", .unknownKey, nil),
    ("[broker]\ntls_ca_file = \"/nonexistent/ca.pem\"", [:], "broker.tls_ca_file", .notFound, nil),
    ("[broker]\ntls_cert_file = \"/etc/hostname\"", [:], "broker.tls_cert_file", .invalid, nil),
    ("[broker]\ntls_verify = \"no\"", [:], "broker.tls_verify", .type, nil),
    ("[broker]\nauth_mechanism = \"external\"", [:], "broker.auth_mechanism", .invalid, nil),
    ("[broker]\nauth_mechanism = \"amqplain\"", [:], "broker.auth_mechanism", .invalid, nil),
    ("", ["DARKROOM_BROKER_TLS_VERIFY": "perhaps"], "broker.tls_verify", .type, "DARKROOM_BROKER_TLS_VERIFY"),
    ("broker = 1", [:], "broker", .type, nil),
    ("[clases.small]\nmax_batch = 1", [:], "clases", .unknownKey, nil),
    ("[classes]", [:], "classes", .missing, nil),
    ("[classes.small]\nmax_bach = 1", [:], "classes.small.max_bach", .unknownKey, nil),
    ("[classes.small]\nmax_batch = 0", [:], "classes.small.max_batch", .range, nil),
    ("[classes.small]\nprefetch = 4", [:], "classes.small.prefetch", .invalid, nil),
    ("[classes.huge]\nmax_batch = 1", [:], "classes.huge.max_pixels", .missing, nil),
    ("[classes.Big]\nmax_pixels = 100000", [:], "classes.Big.max_pixels", .invalid, nil),
    ("[classes.a]\nmax_pixels = 4096\n[classes.b]\nmax_pixels = 4096", [:], "classes.b.max_pixels", .invalid, nil),
    ("[worker]\nconsume = [\"small\", \"tiny\"]", [:], "worker.consume", .invalid, nil),
    ("[worker]\nid = \"has space\"", [:], "worker.id", .invalid, nil),
    ("[worker]\nprogress_max_hz = 0", [:], "worker.progress_max_hz", .range, nil),
    ("[log]\nformat = \"json\"", [:], "log.format", .invalid, nil),
    ("default_model = \"other\"\nmodels = [\"tiny-shapes\"]", [:], "default_model", .invalid, nil),
    ("models = [\"../etc\"]", [:], "models", .invalid, nil),
    ("state_dir = \"\"", [:], "state_dir", .invalid, nil),
    ("", ["DARKROOM_BROKER_HEARTBEAT": "soon"], "broker.heartbeat", .type, "DARKROOM_BROKER_HEARTBEAT"),
    ("", ["DARKROOM_CLASSES_SMALL_MAX_BATCH": "99"], "classes.small.max_batch", .range, "DARKROOM_CLASSES_SMALL_MAX_BATCH"),
    ("", ["DARKROOM_WORKER_CONSUME": "small,xl"], "worker.consume", .invalid, "DARKROOM_WORKER_CONSUME"),
    ("", ["DARKROOM_WORKER_CONSUME": ""], "worker.consume", .invalid, "DARKROOM_WORKER_CONSUME"),
    ("", ["DARKROOM_QUEUE_TYPE": "Quorum"], "queue_type", .invalid, "DARKROOM_QUEUE_TYPE"),
    ("", ["DARKROOM_CLASSES_SMALL_MAX_BACH": "1"], "", .unknownKey, "DARKROOM_CLASSES_SMALL_MAX_BACH"),
    ("[webhook]\nsecrets_file = \"/nonexistent/hooks\"", [:], "webhook.secrets_file", .notFound, nil),
    ("[webhook]\nmax_attempts = 0", [:], "webhook.max_attempts", .range, nil),
    ("[output]\nstore = \"gcs\"", [:], "output.store", .invalid, nil),
    ("[output]\nstore = \"s3\"", [:], "output.store", .invalid, nil),
    ("[output]\nstore = \"file\"", [:], "output.store", .invalid, nil),
    ("[output]\ndir = \"/nonexistent/out\"", [:], "output.dir", .notFound, nil),
    ("[classes.small]\nstore = \"s3\"", [:], "classes.small.store", .invalid, nil),
    ("[output.s3]\nendpoint = \"http://127.0.0.1:9000\"", [:], "output.s3.bucket", .missing, nil),
    ("[output.s3]\nbucket = \"Bad_Bucket\"", [:], "output.s3.bucket", .invalid, nil),
    ("[output.s3]\nbucket = \"b12\"", [:], "output.s3.endpoint", .missing, nil),
    ("[output.s3]\nbucket = \"b12\"\nendpoint = \"ftp://x\"", [:], "output.s3.endpoint", .invalid, nil),
    ("[output.s3]\nbucket = \"b12\"\nendpoint = \"http://x:9000/path\"", [:], "output.s3.endpoint", .invalid, nil),
    ("[output.s3]\nbucket = \"b12\"\nendpoint = \"http://x:9000\"", [:], "output.s3.credentials_file", .missing, nil),
    ("", ["DARKROOM_OUTPUT_STORE": "s3"], "output.store", .invalid, "DARKROOM_OUTPUT_STORE"),
] as [(String, [String: String], String, ConfigError.Code, String?)])
func invalidConfigIsAnErrorNamingTheKeyAndTheSource(toml: String, env: [String: String], key: String,
                                                     code: ConfigError.Code, variable: String?) throws {
    let e = try #require(configError { try parse(toml, env) })
    #expect(e.key == key)
    #expect(e.code == code)
    #expect(e.source == (variable.map(ConfigSource.environment) ?? .file("/etc/test.toml")))
    #expect(e.description.contains(variable ?? "/etc/test.toml"))
    #expect(key.isEmpty || e.description.contains(key))
}

@Test func unknownKeysAreRejectedWithASuggestion() {
    let e = configError { try parse("[worker]\ndrain_dealine = 5") }
    #expect(e?.code == .unknownKey)
    #expect(e?.description == "/etc/test.toml: worker.drain_dealine: unknown key; did you mean worker.drain_deadline? (unknown_key)")
    #expect(configError { try parse("[clases.small]\nmax_batch = 1") }?.description.hasSuffix("did you mean classes? (unknown_key)") == true)
}

@Test func invalidTOMLNamesTheFileAndTheLine() throws {
    let scratch = try Scratch()
    let path = try scratch.write("bad.toml", "namespace = \"x\"\n[broker\n")
    let e = configError { try DarkroomConfig.load(path: path, environment: [:]) }
    #expect(e?.code == .parse && e?.source == .file(path))
    #expect(e?.description.contains("line 2") == true)
}

@Test func credentialsFileSuppliesUserAndPasswordOrJustThePassword() throws {
    let scratch = try Scratch()
    var c = DarkroomConfig.builtInDefaults()
    c.broker.urls = ["amqp://app@h1:5672/vh", "amqps://h2/"]

    c.broker.credentialsFile = try scratch.write("pw", "s3cr:et/x\n")
    #expect(try c.broker.urlsWithCredentials() == ["amqp://s3cr:et%2Fx@h1:5672/vh", "amqps://s3cr:et%2Fx@h2/"])

    c.broker.credentialsFile = try scratch.write("pw2", "p@ss word\n")
    #expect(try c.broker.urlsWithCredentials() == ["amqp://app:p%40ss%20word@h1:5672/vh", "amqps://guest:p%40ss%20word@h2/"])

    c.broker.credentialsFile = scratch.dir + "/missing"
    let e = configError { _ = try c.broker.urlsWithCredentials(); return c }
    #expect(e?.code == .notFound && e?.key == "broker.credentials_file")

    #expect(DarkroomConfig.redacted("amqp://u:secret@h/") == "amqp://u:***@h/")
    c.broker.urls = ["amqp://h3?heartbeat=2"]
    c.broker.credentialsFile = scratch.dir + "/pw2"
    #expect(try c.broker.urlsWithCredentials() == ["amqp://guest:p%40ss%20word@h3?heartbeat=2"])
}

@Test func tlsKeysFromFileEnvironmentAndSystemdCredentials() throws {
    let scratch = try Scratch()
    let ca = try scratch.write("ca.pem", "x"), cert = try scratch.write("c.pem", "x"), key = try scratch.write("c.key", "x")
    let c = try parse("[broker]\ntls_ca_file = \"\(ca)\"\ntls_cert_file = \"\(cert)\"\ntls_key_file = \"\(key)\"\n"
                      + "tls_verify = false\nauth_mechanism = \"external\"")
    #expect(c.broker.tlsCAFile == ca && c.broker.tlsCertFile == cert && c.broker.tlsKeyFile == key)
    #expect(c.broker.tlsVerify == false && c.broker.authMechanism == .external)
    let e = try parse(nil, ["DARKROOM_BROKER_TLS_CA_FILE": ca, "DARKROOM_BROKER_TLS_VERIFY": "false"])
    #expect(e.broker.tlsCAFile == ca && e.broker.tlsVerify == false && e.broker.tlsCertFile == nil)
    // systemd: LoadCredential=broker-ca.pem:..., broker-cert.pem:..., broker-key.pem:... are the defaults.
    for name in ["broker-ca.pem", "broker-cert.pem", "broker-key.pem"] { _ = try scratch.write(name, "x") }
    let d = try parse(nil, ["CREDENTIALS_DIRECTORY": scratch.dir])
    #expect(d.broker.tlsCAFile == scratch.dir + "/broker-ca.pem")
    #expect(d.broker.tlsCertFile == scratch.dir + "/broker-cert.pem" && d.broker.tlsKeyFile == scratch.dir + "/broker-key.pem")
    // An empty value unsets a credential default.
    #expect(try parse("[broker]\ntls_ca_file = \"\"", ["CREDENTIALS_DIRECTORY": scratch.dir]).broker.tlsCAFile == nil)
    #expect(try parse(nil, [:]).broker.tlsCAFile == nil)
}

@Test func systemdCredentialIsTheDefaultCredentialsFile() throws {
    let scratch = try Scratch()
    _ = try scratch.write("broker", "pw")
    let c = try parse(nil, ["CREDENTIALS_DIRECTORY": scratch.dir])
    #expect(c.broker.credentialsFile == scratch.dir + "/broker")
    #expect(try c.broker.urlsWithCredentials() == ["amqp://guest:pw@127.0.0.1:5672/"])
    #expect(try parse(nil, [:]).broker.credentialsFile == nil)
}

@Test func reloadReportsWhatChangedAndAppliesOnlyTheReloadablePart() throws {
    let old = try parse(nil)
    let new = try parse("namespace = \"other\"\n[classes.small]\nmax_batch = 4\n[classes.medium]\nmax_pixels = 300000",
                        ["DARKROOM_WORKER_CONSUME": "small,medium"])
    let changes = old.changes(to: new)
    #expect(changes.map(\.key) == ["classes.large.batch_window_ms", "classes.large.max_batch", "classes.large.max_height",
                                   "classes.large.max_pixels", "classes.large.max_width", "classes.large.prefetch",
                                   "classes.large.weight", "classes.medium.max_pixels", "classes.small.max_batch",
                                   "namespace", "worker.consume"])
    #expect(changes.first { $0.key == "classes.small.max_batch" }?.description == "classes.small.max_batch: 8 -> 4")
    #expect(changes.first { $0.key == "classes.large.max_pixels" }?.new == "(none)")
    #expect(changes.filter { !$0.reloadable }.map(\.key) == ["namespace"])

    let applied = old.applyingReloadable(from: new)
    #expect(applied.namespace == "darkroom")
    #expect(applied.sizeClass(named: "small")?.maxBatch == 4 && applied.classes.count == 2)
    #expect(applied.worker.consume == ["small", "medium"])
    #expect(applied.changes(to: new).map(\.key) == ["namespace"])
    #expect(old.changes(to: old).isEmpty)
}

@Test func metricsListenIsOffByDefaultAndTakesHostPortFromTheFileOrTheEnvironment() throws {
    #expect(try DarkroomConfig.parse(toml: nil, source: .builtIn).metrics.endpoint == nil)
    let file = try DarkroomConfig.parse(toml: "[metrics]\nlisten = \"127.0.0.1:9464\"\n", source: .file("t.toml"))
    #expect(file.metrics.endpoint == DarkroomConfig.ListenAddress("127.0.0.1:9464"))
    #expect(file.metrics.endpoint?.port == 9464 && file.metrics.endpoint?.host == "127.0.0.1")
    let env = try DarkroomConfig.parse(toml: nil, source: .builtIn, environment: ["DARKROOM_METRICS_LISTEN": "[::1]:0"])
    #expect(env.metrics.endpoint?.isIPv6 == true && env.metrics.endpoint?.host == "::1" && env.metrics.endpoint?.port == 0)
    #expect(DarkroomConfig.ListenAddress("localhost:80")?.host == "127.0.0.1")
    #expect(try DarkroomConfig.parse(toml: "[metrics]\nlisten = \"\"\n", source: .file("t.toml")).metrics.endpoint == nil)
    for bad in ["9464", "127.0.0.1", "127.0.0.1:99999", "example.com:9464", "1.2.3:80", "[zz]:80", "127.0.0.1:-1"] {
        do {
            _ = try DarkroomConfig.parse(toml: nil, source: .builtIn, environment: ["DARKROOM_METRICS_LISTEN": bad])
            Issue.record("\(bad) was accepted")
        } catch let e as ConfigError {
            #expect(e.description.contains("metrics.listen") && e.description.contains("host:port"), "\(e)")
        }
    }
}
