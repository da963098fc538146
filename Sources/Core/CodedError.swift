// The one error shape of every Darkroom module: a short machine code and a message a person can act on.

/// An error with a stable snake_case `code` (for logs, metrics and tests) and a one-line `message` that says
/// what is wrong and what to do about it. `description` is the same everywhere: `message (code)`.
public protocol CodedError: Error, Sendable, CustomStringConvertible {
    associatedtype Code: RawRepresentable & Sendable where Code.RawValue == String
    var code: Code { get }
    var message: String { get }
}

extension CodedError {
    public var description: String { "\(message) (\(code.rawValue))" }
}
