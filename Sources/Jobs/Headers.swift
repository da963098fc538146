// AMQP header values as the contract uses them, independent of the AMQP module:
// long strings (UTF-8) and integers. The worker maps these onto rabbitmq-c field tables.

public enum HeaderValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }
}

/// One header or queue argument; a message's headers are an ordered `[Header]`.
public struct Header: Equatable, Sendable {
    public var key: String
    public var value: HeaderValue

    public init(_ key: String, _ value: HeaderValue) {
        self.key = key
        self.value = value
    }
}

extension Array where Element == Header {
    /// The value of the first header with this key.
    public subscript(header key: String) -> HeaderValue? {
        first { $0.key == key }?.value
    }
}

/// Header names of the contract.
public enum HeaderName {
    public static let event = "darkroom-event"
    public static let job = "darkroom-job"
    public static let index = "darkroom-index"
    public static let seed = "darkroom-seed"
    public static let width = "darkroom-width"
    public static let height = "darkroom-height"
    /// Set on messages dead-lettered to `darkroom.dead`: why.
    public static let error = "darkroom-error"
}
