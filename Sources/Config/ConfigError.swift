// ConfigError: a configuration problem, naming the key and where the bad value came from.
import Core

/// Where a configuration value came from.
public enum ConfigSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case environment(String)
    case builtIn

    public var description: String {
        switch self {
        case .file(let path): return path
        case .environment(let name): return "environment variable \(name)"
        case .builtIn: return "built-in defaults"
        }
    }
}

/// An invalid configuration. `description` reads e.g.
/// `/etc/darkroom/darkroom.toml: classes.small.max_batch: must be between 1 and 64, got 0 (range)`.
public struct ConfigError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case notFound = "not_found"      // the config file (or credentials file) is missing / unreadable
        case parse                       // not valid TOML
        case type                        // wrong value type
        case range                       // number out of range
        case invalid                     // a value that is not allowed (bad name, unknown enum value, ...)
        case unknownKey = "unknown_key"  // typo protection
        case missing                     // a required value is absent
    }

    public var code: Code
    /// Dotted key path (`classes.small.max_batch`); empty for whole-file problems.
    public var key: String
    public var source: ConfigSource
    /// What is wrong with the value, without the source and key.
    public var problem: String

    public init(_ code: Code, key: String, source: ConfigSource, _ problem: String) {
        self.code = code
        self.key = key
        self.source = source
        self.problem = problem
    }

    public var message: String {
        key.isEmpty ? "\(source): \(problem)" : "\(source): \(key): \(problem)"
    }
}
