// Reload: what SIGHUP may change in a running worker, and a key-by-key diff of two configurations.

/// The part of the configuration a running worker applies on SIGHUP without a restart:
/// the size classes with their batching limits, which classes it consumes, the progress rate, the log level.
/// The autoscale policy counts as reloadable too: workers do not use it, and `darkroom autoscale` reads
/// the file afresh at every pass.
public struct ReloadableSettings: Sendable, Equatable {
    public var classes: [DarkroomConfig.SizeClass]
    public var consume: [String]
    public var progressMaxHz: Double
    public var logLevel: DarkroomConfig.LogLevel
    public var autoscale: DarkroomConfig.Autoscale
}

/// One key whose value differs between two configurations.
public struct ConfigChange: Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var old: String
    public var new: String
    /// false: the running process keeps the old value until it is restarted.
    public var reloadable: Bool

    public var description: String { "\(key): \(old) -> \(new)" + (reloadable ? "" : " (takes effect after a restart)") }
}

extension DarkroomConfig {
    public var reloadable: ReloadableSettings {
        get {
            ReloadableSettings(classes: classes, consume: worker.consume, progressMaxHz: worker.progressMaxHz,
                               logLevel: log.level, autoscale: autoscale)
        }
        set {
            classes = newValue.classes
            worker.consume = newValue.consume
            worker.progressMaxHz = newValue.progressMaxHz
            log.level = newValue.logLevel
            autoscale = newValue.autoscale
        }
    }

    /// Whether a key path belongs to `reloadable`.
    public static func isReloadable(key: String) -> Bool {
        key.hasPrefix("classes.") || key.hasPrefix("autoscale.")
            || ["worker.consume", "worker.progress_max_hz", "log.level"].contains(key)
    }

    /// This configuration with the reloadable part taken from `new` (what a SIGHUP applies).
    public func applyingReloadable(from new: DarkroomConfig) -> DarkroomConfig {
        var c = self
        c.reloadable = new.reloadable
        return c
    }

    /// Every key whose value differs in `new`, in key order; a class only in one of them shows as `(none)`.
    public func changes(to new: DarkroomConfig) -> [ConfigChange] {
        let a = Dictionary(flattened(), uniquingKeysWith: { x, _ in x })
        let b = Dictionary(new.flattened(), uniquingKeysWith: { x, _ in x })
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            let old = a[key] ?? "(none)", now = b[key] ?? "(none)"
            return old == now ? nil : ConfigChange(key: key, old: old, new: now, reloadable: Self.isReloadable(key: key))
        }
    }

    /// Every key with its effective value as text (passwords in URIs redacted), in a stable order.
    public func flattened() -> [(key: String, value: String)] {
        func list(_ l: [String]) -> String { "[" + l.joined(separator: ", ") + "]" }
        func opt(_ i: Int?) -> String { i.map(String.init) ?? "(unset)" }
        var out: [(key: String, value: String)] = [
            ("broker.urls", list(broker.urls.map(Self.redacted))),
            ("broker.credentials_file", broker.credentialsFile ?? "(unset)"),
            ("broker.heartbeat", "\(broker.heartbeat)"),
            ("broker.frame_max", "\(broker.frameMax)"),
            ("broker.reconnect_max_backoff", "\(broker.reconnectMaxBackoff)"),
            ("broker.tls_ca_file", broker.tlsCAFile ?? "(unset)"),
            ("broker.tls_cert_file", broker.tlsCertFile ?? "(unset)"),
            ("broker.tls_key_file", broker.tlsKeyFile ?? "(unset)"),
            ("broker.tls_verify", "\(broker.tlsVerify)"),
            ("broker.auth_mechanism", broker.authMechanism.rawValue),
            ("namespace", namespace),
            ("queue_type", queueType.rawValue),
            ("max_priority", "\(maxPriority)"),
            ("delivery_limit", "\(deliveryLimit)"),
        ]
        for c in classes {
            let p = "classes.\(c.name)."
            out += [(p + "max_pixels", "\(c.maxPixels)"), (p + "max_width", opt(c.maxWidth)),
                    (p + "max_height", opt(c.maxHeight)), (p + "max_batch", "\(c.maxBatch)"),
                    (p + "batch_window_ms", "\(c.batchWindowMs)"), (p + "prefetch", "\(c.prefetch)"),
                    (p + "weight", "\(c.weight)")]
        }
        out += [
            ("worker.consume", list(worker.consume)),
            ("worker.id", worker.id),
            ("worker.drain_deadline", "\(worker.drainDeadline)"),
            ("worker.memory_budget_mb", "\(worker.memoryBudgetMB)"),
            ("worker.progress_max_hz", "\(worker.progressMaxHz)"),
            ("worker.threads", "\(worker.threads)"),
            ("state_dir", stateDir), ("cache_dir", cacheDir), ("seeds_dir", seedsDir),
            ("model_dir", modelDir), ("models", list(models)), ("default_model", defaultModel),
            ("log.level", log.level.rawValue), ("log.format", log.format.rawValue),
            ("metrics.listen", metrics.listen.isEmpty ? "(off)" : metrics.listen),
        ]
        func policy(_ prefix: String, _ p: Autoscale.Policy) -> [(key: String, value: String)] {
            [(prefix + "min_workers", "\(p.minWorkers)"), (prefix + "max_workers", "\(p.maxWorkers)"),
             (prefix + "target_depth_per_worker", "\(p.targetDepthPerWorker)"),
             (prefix + "hysteresis", "\(p.hysteresis)"), (prefix + "cooldown", "\(p.cooldown)")]
        }
        out += policy("autoscale.", autoscale.defaults)
        for name in autoscale.classes.keys.sorted() {
            if let p = autoscale.classes[name] { out += policy("autoscale.classes.\(name).", p) }
        }
        return out
    }
}
