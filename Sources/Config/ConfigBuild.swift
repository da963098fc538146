// ConfigBuild: turns the merged, typed entries into a validated DarkroomConfig.
import Foundation

extension DarkroomConfig {
    static func build(_ r: Reader, fileClasses: [String]?, environment: [String: String]) throws -> DarkroomConfig {
        var c = builtInDefaults(environment: environment)

        // Broker.
        if let urls = try r.list("broker.urls") {
            guard !urls.isEmpty else { throw r.fail(.invalid, "broker.urls", "must list at least one AMQP URI") }
            for url in urls where !isAMQPURI(url) {
                throw r.fail(.invalid, "broker.urls", "\"\(redacted(url))\" is not an amqp:// or amqps:// URI with a host")
            }
            c.broker.urls = urls
        }
        if let file = try r.string("broker.credentials_file") {
            if file.isEmpty {
                c.broker.credentialsFile = nil
            } else {
                let path = Paths.resolve(file, relativeTo: r.source("broker.credentials_file"))
                guard FileManager.default.fileExists(atPath: path) else {
                    throw r.fail(.notFound, "broker.credentials_file", "\(path) does not exist")
                }
                c.broker.credentialsFile = path
            }
        }
        c.broker.heartbeat = try r.int("broker.heartbeat", 0...3600) ?? c.broker.heartbeat
        c.broker.frameMax = try r.int("broker.frame_max", 4096...Int(Int32.max)) ?? c.broker.frameMax
        c.broker.reconnectMaxBackoff = try r.int("broker.reconnect_max_backoff", 1...3600) ?? c.broker.reconnectMaxBackoff
        // TLS (amqps URLs): files must exist; an empty string unsets a default (e.g. a systemd credential).
        for (key, path) in [("broker.tls_ca_file", \Broker.tlsCAFile), ("broker.tls_cert_file", \Broker.tlsCertFile),
                            ("broker.tls_key_file", \Broker.tlsKeyFile)] {
            guard let file = try r.string(key) else { continue }
            if file.isEmpty { c.broker[keyPath: path] = nil; continue }
            let resolved = Paths.resolve(file, relativeTo: r.source(key))
            guard FileManager.default.isReadableFile(atPath: resolved) else {
                throw r.fail(.notFound, key, "\(resolved) does not exist or cannot be read")
            }
            c.broker[keyPath: path] = resolved
        }
        if (c.broker.tlsCertFile == nil) != (c.broker.tlsKeyFile == nil) {
            throw r.fail(.invalid, c.broker.tlsCertFile == nil ? "broker.tls_key_file" : "broker.tls_cert_file",
                         "broker.tls_cert_file and broker.tls_key_file must be given together")
        }
        c.broker.tlsVerify = try r.bool("broker.tls_verify") ?? c.broker.tlsVerify
        c.broker.authMechanism = try r.choice("broker.auth_mechanism", AuthMechanism.self) ?? c.broker.authMechanism
        if c.broker.authMechanism == .external && c.broker.tlsCertFile == nil {
            throw r.fail(.invalid, "broker.auth_mechanism",
                         "\"external\" logs in with a client certificate: set broker.tls_cert_file and broker.tls_key_file")
        }

        // Topology.
        if let ns = try r.string("namespace") {
            guard isName(ns, max: 64, extra: "._-"), !ns.hasPrefix("."), !ns.hasSuffix(".") else {
                throw r.fail(.invalid, "namespace", "\"\(ns)\" must be 1..64 of [A-Za-z0-9._-], not starting or ending with '.'")
            }
            c.namespace = ns
        }
        c.queueType = try r.choice("queue_type", QueueType.self) ?? c.queueType
        c.maxPriority = try r.int("max_priority", 1...255) ?? c.maxPriority
        c.deliveryLimit = try r.int("delivery_limit", 1...10_000) ?? c.deliveryLimit

        c.classes = try buildClasses(r, fileClasses: fileClasses)

        // Worker.
        if let consume = try r.list("worker.consume") {
            guard !consume.isEmpty else { throw r.fail(.invalid, "worker.consume", "must name at least one class") }
            for name in consume where c.sizeClass(named: name) == nil {
                throw r.fail(.invalid, "worker.consume", "class \"\(name)\" is not defined; defined: "
                             + c.classes.map(\.name).joined(separator: ", "))
            }
            guard Set(consume).count == consume.count else {
                throw r.fail(.invalid, "worker.consume", "names a class twice")
            }
            c.worker.consume = consume
        } else {
            c.worker.consume = c.classes.map(\.name)
        }
        if let id = try r.string("worker.id") {
            guard (1...128).contains(id.count), id.allSatisfy(Paths.isIDChar) else {
                throw r.fail(.invalid, "worker.id", "\"\(id)\" must be 1..128 of [A-Za-z0-9._:-]")
            }
            c.worker.id = id
        }
        c.worker.drainDeadline = try r.int("worker.drain_deadline", 0...86_400) ?? c.worker.drainDeadline
        c.worker.memoryBudgetMB = try r.int("worker.memory_budget_mb", 0...(1 << 30)) ?? c.worker.memoryBudgetMB
        c.worker.progressMaxHz = try r.double("worker.progress_max_hz", 0.01...1000) ?? c.worker.progressMaxHz
        c.worker.threads = try r.int("worker.threads", 0...4096) ?? c.worker.threads

        // Folders and models.
        c.stateDir = try r.path("state_dir") ?? c.stateDir
        c.cacheDir = try r.path("cache_dir") ?? c.cacheDir
        c.seedsDir = try r.path("seeds_dir") ?? (c.stateDir + "/seeds")
        c.modelDir = try r.path("model_dir") ?? c.modelDir
        if let model = try r.string("default_model") {
            guard isModelName(model) else { throw r.fail(.invalid, "default_model", modelNameRule(model)) }
            c.defaultModel = model
        }
        if let models = try r.list("models") {
            guard !models.isEmpty else { throw r.fail(.invalid, "models", "must name at least one model") }
            for m in models where !isModelName(m) { throw r.fail(.invalid, "models", modelNameRule(m)) }
            guard models.contains(c.defaultModel) else {
                throw r.fail(.invalid, r.has("default_model") ? "default_model" : "models",
                             "default model \"\(c.defaultModel)\" is not among models [\(models.joined(separator: ", "))]")
            }
            c.models = models
        } else {
            c.models = [c.defaultModel]
        }

        c.log.level = try r.choice("log.level", LogLevel.self) ?? c.log.level
        c.log.format = try r.choice("log.format", LogFormat.self) ?? c.log.format

        c.autoscale = try buildAutoscale(r, classes: c.classes)
        c.text.cacheMB = try r.int("text.cache_mb", 0...1_048_576) ?? c.text.cacheMB
        if let listen = try r.string("metrics.listen") {
            guard listen.isEmpty || DarkroomConfig.ListenAddress(listen) != nil else {
                throw r.fail(.invalid, "metrics.listen",
                             "\"\(listen)\" is not host:port (an IPv4 literal, [IPv6] or localhost, and a port 0..65535), "
                             + "e.g. \"127.0.0.1:9464\"; empty turns the listener off")
            }
            c.metrics.listen = listen
        }
        c.precision = try buildPrecision(r, models: c.models)
        try buildDelivery(r, &c, environment: environment)

        try r.rejectUnused(known: Array(sections) + scalarKeys + c.classes.flatMap { cls in classFields.map { "classes.\(cls.name).\($0)" } }
                           + autoscaleKnownKeys(classes: c.classes))
        return c
    }

    /// `[precision]`: `<model> = "bf16" | "fp16" | "fp32"` for served models; from the environment
    /// `DARKROOM_PRECISION_<MODEL>` (the model name upper-cased, '-' and '.' as '_').
    static func buildPrecision(_ r: Reader, models: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        var known: Set<String> = []
        for model in models {
            let envKey = "precision." + environmentName(forKey: model).dropFirst("DARKROOM_".count).lowercased()
            for key in ["precision.\(model)", envKey] where r.has(key) && !known.contains(key) {   // the environment's last: it wins
                known.insert(key)
                guard let value = try r.string(key) else { continue }
                guard precisions.contains(value) else {
                    throw r.fail(.invalid, key, "unknown precision \"\(value)\"; expected one of " + precisions.map { "\"\($0)\"" }.joined(separator: ", "))
                }
                out[model] = value
            }
        }
        for key in r.entries.keys.sorted() where key.hasPrefix("precision.") && !known.contains(key) {
            throw r.fail(.invalid, key, "model \(key.dropFirst("precision.".count)) is not among models [\(models.joined(separator: ", "))]")
        }
        return out
    }

    /// The class set is the file's `[classes]` when it has one, else the built-in classes; environment
    /// variables adjust fields of those or define new classes. A class named like a built-in one starts
    /// from the built-in values; any other class must give `max_pixels` (or `max_width` and `max_height`).
    static func buildClasses(_ r: Reader, fileClasses: [String]?) throws -> [SizeClass] {
        var names = fileClasses ?? defaultClasses.map(\.name)
        for key in r.entries.keys.sorted() where key.hasPrefix("classes.") {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 3, !names.contains(String(parts[1])) { names.append(String(parts[1])) }
        }
        var classes: [SizeClass] = []
        for name in names {
            let k = { (field: String) in "classes.\(name).\(field)" }
            let anyKey = classFields.map(k).first(where: r.has) ?? k("max_pixels")
            guard name.first?.isLetter == true, isName(name, max: 32, extra: "_"), name == name.lowercased() else {
                throw r.fail(.invalid, anyKey, "class name \"\(name)\" must be 1..32 of [a-z0-9_], starting with a letter")
            }
            var cls = defaultClasses.first { $0.name == name }
                ?? SizeClass(name: name, maxPixels: 0, maxBatch: 1, batchWindowMs: 200, prefetch: 4)
            let side = 8...65_536
            cls.maxWidth = try r.int(k("max_width"), side) ?? cls.maxWidth
            cls.maxHeight = try r.int(k("max_height"), side) ?? cls.maxHeight
            if let pixels = try r.int(k("max_pixels"), 64...(1 << 32)) {
                cls.maxPixels = pixels
            } else if r.has(k("max_width")), r.has(k("max_height")), let w = cls.maxWidth, let h = cls.maxHeight {
                cls.maxPixels = w * h
            }
            guard cls.maxPixels > 0 else {
                throw ConfigError(.missing, key: k("max_pixels"), source: r.source(anyKey), "class \"\(name)\" needs max_pixels (or max_width and max_height)")
            }
            cls.maxBatch = try r.int(k("max_batch"), 1...64) ?? cls.maxBatch
            cls.batchWindowMs = try r.int(k("batch_window_ms"), 0...60_000) ?? cls.batchWindowMs
            let prefetchKey = r.has(k("prefetch")) ? k("prefetch") : k("max_batch")
            cls.prefetch = try r.int(k("prefetch"), 1...65_535) ?? cls.prefetch
            guard cls.prefetch >= cls.maxBatch else {
                throw r.fail(.invalid, prefetchKey,
                             "prefetch (\(cls.prefetch)) must be at least max_batch (\(cls.maxBatch)), or batches can never fill")
            }
            cls.weight = try r.int(k("weight"), 1...100) ?? cls.weight
            cls.store = try r.choice(k("store"), StoreName.self) ?? cls.store
            classes.append(cls)
        }
        classes.sort { $0.maxPixels < $1.maxPixels }
        for (a, b) in zip(classes, classes.dropFirst()) where a.maxPixels == b.maxPixels {
            throw r.fail(.invalid, "classes.\(b.name).max_pixels",
                         "classes \(a.name) and \(b.name) have the same pixel budget (\(a.maxPixels)); a size could not be routed")
        }
        return classes
    }

    static func isName(_ s: String, max: Int, extra: String) -> Bool {
        (1...max).contains(s.count) && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || extra.contains($0)) }
    }

    static func isModelName(_ s: String) -> Bool {
        isName(s, max: 64, extra: "._-") && !s.hasPrefix(".")
    }

    static func modelNameRule(_ s: String) -> String {
        "model name \"\(s)\" must be 1..64 of [A-Za-z0-9._-], not starting with '.'"
    }

    static func isAMQPURI(_ s: String) -> Bool {
        guard let parts = AMQPURIParts(s) else { return false }
        return !parts.host.isEmpty
    }

    /// The URI with its password replaced by `***`, for messages and logs.
    public static func redacted(_ uri: String) -> String {
        guard let p = AMQPURIParts(uri), let info = p.userinfo, let colon = info.firstIndex(of: ":") else { return uri }
        return p.with(userinfo: info[..<colon] + ":***")
    }
}
