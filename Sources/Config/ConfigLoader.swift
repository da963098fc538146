// ConfigLoader: built-in defaults, overlaid by the TOML file, overlaid by DARKROOM_* environment variables;
// every value type- and range-checked, unknown keys rejected, errors naming key and source.
import Foundation
import TOMLKit

extension DarkroomConfig {
    /// Loads the configuration.
    /// - `path`: the TOML file; nil means `/etc/darkroom/darkroom.toml`, and built-in defaults when that
    ///   file does not exist. An explicitly given path that does not exist is an error.
    /// - `environment`: `DARKROOM_<KEY_PATH>` variables override the file (see `environmentName(forKey:)`).
    public static func load(path: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DarkroomConfig {
        let file = path ?? defaultPath
        guard FileManager.default.fileExists(atPath: file) else {
            if path == nil { return try parse(toml: nil, source: .builtIn, environment: environment) }
            throw ConfigError(.notFound, key: "", source: .file(file), "config file does not exist")
        }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.notFound, key: "", source: .file(file), "cannot read the config file (permissions? not UTF-8?)")
        }
        return try parse(toml: text, source: .file(file), environment: environment)
    }

    /// Builds the configuration from TOML text (nil: no file) and the environment.
    /// `source` names the text in errors and anchors its relative paths.
    public static func parse(toml: String?, source: ConfigSource,
                             environment: [String: String] = [:]) throws -> DarkroomConfig {
        var entries: [String: Entry] = [:]
        var fileClasses: [String]?
        if let toml {
            (entries, fileClasses) = try flatten(toml: toml, source: source)
            if fileClasses?.isEmpty == true {
                throw ConfigError(.missing, key: "classes", source: source, "[classes] defines no size class")
            }
        }
        for (key, entry) in try environmentEntries(environment) { entries[key] = entry }
        return try build(Reader(entries), fileClasses: fileClasses, environment: environment)
    }

    /// `DARKROOM_` + the key path in upper snake case: `classes.small.max_batch` -> `DARKROOM_CLASSES_SMALL_MAX_BATCH`.
    public static func environmentName(forKey key: String) -> String {
        "DARKROOM_" + key.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    /// `DARKROOM_*` variables that set no key (worth a warning; they are ignored, except under
    /// `DARKROOM_CLASSES_`, where an unknown field is an error).
    public static func unrecognizedEnvironment(_ environment: [String: String]) -> [String] {
        environment.keys.filter { $0.hasPrefix("DARKROOM_") && key(environmentName: $0) == nil }.sorted()
    }
}

// MARK: - Key schema

extension DarkroomConfig {
    /// Every key outside `classes`, with the environment variable that sets it.
    static let scalarKeys = [
        "namespace", "queue_type", "max_priority", "delivery_limit",
        "state_dir", "cache_dir", "seeds_dir", "model_dir", "models", "default_model",
        "broker.urls", "broker.credentials_file", "broker.heartbeat", "broker.frame_max", "broker.reconnect_max_backoff",
        "broker.tls_ca_file", "broker.tls_cert_file", "broker.tls_key_file", "broker.tls_verify", "broker.auth_mechanism",
        "worker.consume", "worker.id", "worker.drain_deadline", "worker.memory_budget_mb",
        "worker.progress_max_hz", "worker.threads",
        "log.level", "log.format",
        "autoscale.min_workers", "autoscale.max_workers", "autoscale.target_depth_per_worker",
        "autoscale.hysteresis", "autoscale.cooldown",
        "text.cache_mb",
        "metrics.listen",
    ] + deliveryKeys
    /// Fields of each `classes.<name>` table.
    static let classFields = ["max_pixels", "max_width", "max_height", "max_batch", "batch_window_ms", "prefetch", "weight", "store"]
    static let sections: Set<String> = ["broker", "worker", "log", "classes", "autoscale", "autoscale.classes", "text", "metrics",
                                        "precision", "webhook", "output", "output.s3"]

    static let fixedEnvironmentNames: [String: String] =
        Dictionary(uniqueKeysWithValues: scalarKeys.map { (environmentName(forKey: $0), $0) })

    /// The key a `DARKROOM_*` variable sets, if any: a fixed key (`DARKROOM_BROKER_URLS`), or a field of a
    /// named table (`DARKROOM_CLASSES_<NAME>_<FIELD>`, `DARKROOM_AUTOSCALE_CLASSES_<NAME>_<FIELD>`). The inverse
    /// of `environmentName(forKey:)`, which is the one mapping from keys to names.
    static func key(environmentName name: String) -> String? {
        if let key = fixedEnvironmentNames[name] { return key }
        let precision = environmentName(forKey: "precision.")
        if name.hasPrefix(precision), name.count > precision.count { return "precision." + name.dropFirst(precision.count).lowercased() }
        for (table, fields) in [("autoscale.classes", autoscaleFields), ("classes", classFields)] {
            if let key = tableKey(environmentName: name, table: table, fields: fields) { return key }
        }
        return nil
    }

    /// `environmentName(forKey: "<table>.")` + `<NAME>_<FIELD>` -> `<table>.<name>.<field>` (the longest
    /// matching field wins).
    static func tableKey(environmentName name: String, table: String, fields: [String]) -> String? {
        let prefix = environmentName(forKey: table + ".")
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        for field in fields.sorted(by: { $0.count > $1.count }) {
            let suffix = "_" + environmentName(forKey: field).dropFirst("DARKROOM_".count)
            if rest.hasSuffix(suffix), rest.count > suffix.count {
                return table + "." + rest.dropLast(suffix.count).lowercased() + "." + field
            }
        }
        return nil
    }
}

// MARK: - Raw values

enum RawValue {
    case string(String), int(Int), double(Double), bool(Bool), array([RawValue]), table, other(String)

    var kind: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "a boolean"
        case .array: return "a list"
        case .table: return "a table"
        case .other(let t): return "a \(t)"
        }
    }
}

struct Entry {
    var value: RawValue
    var source: ConfigSource
    var fromEnvironment: Bool { if case .environment = source { return true } else { return false } }
}

extension DarkroomConfig {
    static func flatten(toml: String, source: ConfigSource) throws -> ([String: Entry], [String]?) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: toml)
        } catch let error as TOMLParseError {
            throw ConfigError(.parse, key: "", source: source,
                              "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        }
        var entries: [String: Entry] = [:]
        var classes: [String]?
        func walk(_ table: TOMLTable, _ prefix: String) throws {
            for key in table.keys {
                guard let value = table[key] else { continue }
                let path = prefix.isEmpty ? key : prefix + "." + key
                let isSection = sections.contains(path) || prefix == "classes" || prefix == "autoscale.classes"
                if isSection {
                    guard let sub = value.table else {
                        throw ConfigError(.type, key: path, source: source,
                                          "must be a table ([\(path)]), got \(raw(value).kind)")
                    }
                    if path == "classes" { classes = sub.keys }
                    try walk(sub, path)
                } else {
                    entries[path] = Entry(value: raw(value), source: source)
                }
            }
        }
        try walk(table, "")
        return (entries, classes)
    }

    static func raw(_ value: TOMLValueConvertible) -> RawValue {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .int(value.int ?? 0)
        case .double: return .double(value.double ?? 0)
        case .bool: return .bool(value.bool ?? false)
        case .array: return .array((value.array.map { Array($0) } ?? []).map(raw))
        case .table: return .table
        case .date, .time, .dateTime: return .other(value.type.description)
        }
    }

    static func environmentEntries(_ environment: [String: String]) throws -> [String: Entry] {
        var entries: [String: Entry] = [:]
        for (name, value) in environment where name.hasPrefix("DARKROOM_") {
            let source = ConfigSource.environment(name)
            if let key = key(environmentName: name) {
                entries[key] = Entry(value: .string(value), source: source)
            } else if name.hasPrefix(environmentName(forKey: "autoscale.classes.")) {
                throw ConfigError(.unknownKey, key: "", source: source,
                                  "sets no known autoscale field; expected DARKROOM_AUTOSCALE_CLASSES_<NAME>_<FIELD> with FIELD one of "
                                  + autoscaleFields.map { $0.uppercased() }.joined(separator: ", "))
            } else if name.hasPrefix(environmentName(forKey: "classes.")) {
                throw ConfigError(.unknownKey, key: "", source: source,
                                  "sets no known class field; expected DARKROOM_CLASSES_<NAME>_<FIELD> with FIELD one of "
                                  + classFields.map { $0.uppercased() }.joined(separator: ", "))
            }
        }
        return entries
    }
}

// MARK: - Typed reading

/// Reads typed values out of the merged entries, remembering which keys were used.
final class Reader {
    let entries: [String: Entry]
    private(set) var used: Set<String> = []

    init(_ entries: [String: Entry]) { self.entries = entries }

    func has(_ key: String) -> Bool { entries[key] != nil }
    func source(_ key: String) -> ConfigSource { entries[key]?.source ?? .builtIn }

    private func entry(_ key: String) -> Entry? {
        used.insert(key)
        return entries[key]
    }

    func fail(_ code: ConfigError.Code, _ key: String, _ message: String) -> ConfigError {
        ConfigError(code, key: key, source: source(key), message)
    }

    private func typeError(_ key: String, _ expected: String, _ entry: Entry) -> ConfigError {
        if case .string(let s) = entry.value, entry.fromEnvironment {
            return fail(.type, key, "expected \(expected), got \"\(s)\"")
        }
        return fail(.type, key, "expected \(expected), got \(entry.value.kind)")
    }

    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let e = entry(key) else { return nil }
        let v: Int
        switch e.value {
        case .int(let i): v = i
        case .string(let s) where e.fromEnvironment:
            guard let i = Int(s.trimmingCharacters(in: .whitespaces)) else { throw typeError(key, "an integer", e) }
            v = i
        default: throw typeError(key, "an integer", e)
        }
        guard range.contains(v) else {
            throw fail(.range, key, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }

    func double(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let e = entry(key) else { return nil }
        let v: Double
        switch e.value {
        case .int(let i): v = Double(i)
        case .double(let d): v = d
        case .string(let s) where e.fromEnvironment:
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)), d.isFinite else {
                throw typeError(key, "a number", e)
            }
            v = d
        default: throw typeError(key, "a number", e)
        }
        guard range.contains(v) else {
            throw fail(.range, key, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let e = entry(key) else { return nil }
        switch e.value {
        case .bool(let b): return b
        case .string(let s) where e.fromEnvironment:
            switch s.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw typeError(key, "true or false", e)
            }
        default: throw typeError(key, "true or false", e)
        }
    }

    func string(_ key: String) throws -> String? {
        guard let e = entry(key) else { return nil }
        guard case .string(let s) = e.value else { throw typeError(key, "a string", e) }
        return s
    }

    /// A path; relative paths from the file are resolved against the file's folder. Must not be empty.
    func path(_ key: String) throws -> String? {
        guard let s = try string(key) else { return nil }
        guard !s.isEmpty else { throw fail(.invalid, key, "must not be empty") }
        return Paths.resolve(s, relativeTo: source(key))
    }

    /// A list of strings; from the environment, comma-separated (blanks around items are trimmed).
    func list(_ key: String) throws -> [String]? {
        guard let e = entry(key) else { return nil }
        switch e.value {
        case .string(let s) where e.fromEnvironment:
            return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .array(let items):
            return try items.map {
                guard case .string(let s) = $0 else { throw fail(.type, key, "expected a list of strings, found \($0.kind) in it") }
                return s
            }
        default: throw typeError(key, "a list of strings", e)
        }
    }

    func choice<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws -> E? where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = E(rawValue: s) else {
            throw fail(.invalid, key, "unknown value \"\(s)\"; expected one of " + E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        return v
    }

    /// Every key that was never read is a typo or a key this version does not know.
    func rejectUnused(known: [String]) throws {
        for key in entries.keys.sorted() where !used.contains(key) {
            var message = "unknown key"
            if let guess = known.min(by: { editDistance($0, key) < editDistance($1, key) }), editDistance(guess, key) <= 3 {
                message += "; did you mean \(guess)?"
            }
            throw fail(.unknownKey, key, message)
        }
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var prev = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[b.count]
}
