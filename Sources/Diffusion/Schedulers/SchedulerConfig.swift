// diffusers ConfigMixin semantics for scheduler configs (configuration_utils.py:489-492, 498-590, 698-728;
// docs/engine.md §1.2): a scheduler reads only the keys that were present in the JSON file; keys listed in
// `_use_default_values` are dropped, so a scheduler built `from_config` of another one falls back to ITS OWN
// defaults for them. Private keys (`_class_name`, `_diffusers_version`) are not kwargs.
import Core
import Foundation
import Weights

/// Sampler names understood by the engine (and the wire protocol).
public enum SamplerName: String, Sendable, Codable, CaseIterable {
    case ddim
    case dpmpp2m = "dpmpp_2m"
    case euler
    case flowEuler = "flow_euler"

    /// The diffusers class that implements it.
    public var className: String {
        switch self {
        case .ddim: return "DDIMScheduler"
        case .dpmpp2m: return "DPMSolverMultistepScheduler"
        case .euler: return "EulerDiscreteScheduler"
        case .flowEuler: return "FlowMatchEulerDiscreteScheduler"
        }
    }

    /// The sampler for a diffusers scheduler class name, if supported.
    public init?(className: String) {
        guard let s = SamplerName.allCases.first(where: { $0.className == className }) else { return nil }
        self = s
    }
}

/// Why a scheduler could not be built or stepped.
public struct SchedulerError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case unreadable
        case badConfig = "bad_config"
        case unsupportedOption = "unsupported_option"
        case badSteps = "bad_steps"
        case badTables = "bad_tables"
        case badInput = "bad_input"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = "scheduler: " + message }
}

/// The keys of a `scheduler_config.json` that count as passed to `__init__`.
public struct SchedulerConfig: Sendable, Equatable {
    /// `_class_name` of the file (the pipeline's default scheduler).
    public var className: String?
    /// Non-private keys present in the file, minus those listed in `_use_default_values`.
    public var values: [String: JSONValue]

    public init(className: String? = nil, values: [String: JSONValue] = [:]) {
        self.className = className
        self.values = values
    }

    /// From a parsed JSON object (a scheduler_config.json).
    public init(json object: [String: JSONValue]) {
        className = object["_class_name"]?.stringValue
        let defaulted = Set((object["_use_default_values"]?.arrayValue ?? []).compactMap(\.stringValue))
        values = object.filter { !$0.key.hasPrefix("_") && !defaulted.contains($0.key) }
    }

    public init(contentsOf url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SchedulerError(.unreadable, "cannot read \(url.path)")
        }
        guard let json = try? JSONValue.parse(data), let object = json.objectValue else {
            throw SchedulerError(.badConfig, "\(url.lastPathComponent) is not a JSON object")
        }
        self.init(json: object)
    }

    /// The sampler named by `_class_name`, if it is one we implement.
    public var defaultSampler: SamplerName? { className.flatMap(SamplerName.init(className:)) }

    // Typed accessors: a missing key or JSON null gives the class default (null only where diffusers
    // accepts None — callers pass the default that None means).
    func double(_ key: String, _ def: Double) throws -> Double {
        guard let v = values[key], !v.isNull else { return def }
        guard let d = v.doubleValue else { throw SchedulerError(.badConfig, "\(key) must be a number") }
        return d
    }
    func int(_ key: String, _ def: Int) throws -> Int {
        guard let v = values[key], !v.isNull else { return def }
        guard let i = v.intValue else { throw SchedulerError(.badConfig, "\(key) must be an integer") }
        return i
    }
    func bool(_ key: String, _ def: Bool) throws -> Bool {
        guard let v = values[key], !v.isNull else { return def }
        guard let b = v.boolValue else { throw SchedulerError(.badConfig, "\(key) must be true or false") }
        return b
    }
    func string(_ key: String, _ def: String) throws -> String {
        guard let v = values[key], !v.isNull else { return def }
        guard let s = v.stringValue else { throw SchedulerError(.badConfig, "\(key) must be a string") }
        return s
    }
    func optionalDouble(_ key: String) throws -> Double? {
        guard let v = values[key], !v.isNull else { return nil }
        guard let d = v.doubleValue else { throw SchedulerError(.badConfig, "\(key) must be a number") }
        return d
    }
    func doubles(_ key: String) throws -> [Double]? {
        guard let v = values[key], !v.isNull else { return nil }
        guard let a = v.arrayValue else { throw SchedulerError(.badConfig, "\(key) must be a list of numbers") }
        return try a.map {
            guard let d = $0.doubleValue else { throw SchedulerError(.badConfig, "\(key) must be a list of numbers") }
            return d
        }
    }
    /// Throws if an option we do not implement is switched on.
    func requireOff(_ keys: [String]) throws {
        for k in keys where try bool(k, false) {
            throw SchedulerError(.unsupportedOption, "\(k) = true is not supported")
        }
    }
}

/// Throws `unsupportedOption` naming the key when `value` is not one of the implemented `choices`.
func requireSupported<T: Equatable & CustomStringConvertible>(_ value: T, _ choices: [T], key: String) throws {
    guard choices.contains(value) else {
        throw SchedulerError(.unsupportedOption, "\(key) \(value) is not supported")
    }
}
