// Instance names of the darkroom@.service template: `<class>-<n>`, e.g. darkroom@small-1.service.
// The class is everything before the last dash (so a class may itself contain dashes), n is 1, 2, ...
// `darkroomd --instance small-1` consumes class "small".
import Core

/// Why an instance name was refused.
public struct InstanceNameError: CodedError, Equatable {
    public enum Code: String, Sendable { case invalidInstanceName = "invalid_instance_name" }
    public var code: Code { .invalidInstanceName }
    public let name: String
    public let reason: String

    public var message: String {
        "instance name '\(name)' \(reason); expected <class>-<n>, e.g. small-1 (class: a-z, 0-9, _ and -; n >= 1)"
    }
}

public struct InstanceName: Sendable, Hashable, CustomStringConvertible {
    /// The template every worker instance comes from.
    public static let template = "darkroom@.service"

    public let className: String
    public let index: Int

    public init(className: String, index: Int) throws {
        let display = "\(className)-\(index)"
        guard Self.isValidClassName(className) else {
            throw InstanceNameError(name: display, reason: "has an invalid class name")
        }
        guard index >= 1 else { throw InstanceNameError(name: display, reason: "has a number below 1") }
        self.className = className
        self.index = index
    }

    /// Parses `small-1` (or the full unit name `darkroom@small-1.service`).
    public init(parsing text: String) throws {
        var name = Substring(text)
        if name.hasPrefix("darkroom@") { name = name.dropFirst("darkroom@".count) }
        if name.hasSuffix(".service") { name = name.dropLast(".service".count) }
        guard let dash = name.lastIndex(of: "-") else {
            throw InstanceNameError(name: text, reason: "has no '-<n>' suffix")
        }
        let classPart = String(name[..<dash])
        let numberPart = name[name.index(after: dash)...]
        guard !numberPart.isEmpty, numberPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              numberPart.count <= 6, let index = Int(numberPart)
        else { throw InstanceNameError(name: text, reason: "does not end in a number") }
        guard Self.isValidClassName(classPart) else {
            throw InstanceNameError(name: text, reason: "has an invalid class name '\(classPart)'")
        }
        guard index >= 1 else { throw InstanceNameError(name: text, reason: "has a number below 1") }
        self.className = classPart
        self.index = index
    }

    /// `small-1`.
    public var description: String { "\(className)-\(index)" }

    /// `darkroom@small-1.service`.
    public var unitName: String { "darkroom@\(description).service" }

    /// Class names as the config allows them: 1-32 of a-z, 0-9, `_`, `-`, starting with a letter.
    public static func isValidClassName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLowercase, name.count <= 32 else { return false }
        guard name.last != "-" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
