import Core

/// An error of the worker's own: a short code for logs and a message a person can act on.
public struct WorkerError: CodedError {
    public enum Code: String, Sendable {
        case state          // the state dir (ledger, caches, seeds) cannot be used
        case seeds          // the seed store refused an operation
        case config         // the configuration does not make sense
        case broker         // the broker refused or dropped us
        case engine         // the engine failed
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
