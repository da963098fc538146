// Errors of the AMQP layer: a short machine code, and a message a person can act on.
import Core

/// Everything the AMQP layer can fail with. Broker errors carry the broker's reply code and text.
public enum AMQPError: CodedError, Equatable {
    /// A broker URI could not be parsed. `uri` has its password masked.
    case invalidURI(uri: String, reason: String)
    /// The TCP/TLS connection to one broker could not be opened.
    case connectFailed(server: String, reason: String)
    /// Every URI was tried and none connected; one entry per URI, in order.
    case allServersFailed([AMQPError])
    /// The broker closed a channel (e.g. 406 PRECONDITION_FAILED, 404 NOT_FOUND).
    case channelClosed(code: UInt16, text: String)
    /// The broker closed the connection (e.g. 320 CONNECTION_FORCED, 403 ACCESS_REFUSED, 530 NOT_ALLOWED).
    case connectionClosed(code: UInt16, text: String)
    /// The socket failed, the heartbeat timed out or an RPC timed out; the connection is gone.
    case connectionLost(reason: String)
    /// The client is between connections (reconnecting); try again later.
    case notConnected
    /// The delivery came from a connection or channel that has since closed; its ack cannot be sent
    /// (the broker has requeued the message).
    case staleDelivery(deliveryTag: UInt64)
    /// `close()` was called, or the client was never started.
    case clientClosed
    /// `start()` was called twice.
    case alreadyStarted
    /// The caller passed something the protocol cannot carry (too long a short string, bad channel ...).
    case invalidArgument(String)
    /// The broker sent something this client does not understand.
    case protocolError(String)

    public enum Code: String, Sendable {
        case invalidURI = "invalid_uri", connectFailed = "connect_failed", allServersFailed = "all_servers_failed"
        case channelClosed = "channel_closed", connectionClosed = "connection_closed"
        case connectionLost = "connection_lost", notConnected = "not_connected", staleDelivery = "stale_delivery"
        case clientClosed = "client_closed", alreadyStarted = "already_started"
        case invalidArgument = "invalid_argument", protocolError = "protocol_error"
    }

    /// A short stable machine code, e.g. for logs and metrics.
    public var code: Code {
        switch self {
        case .invalidURI: .invalidURI
        case .connectFailed: .connectFailed
        case .allServersFailed: .allServersFailed
        case .channelClosed: .channelClosed
        case .connectionClosed: .connectionClosed
        case .connectionLost: .connectionLost
        case .notConnected: .notConnected
        case .staleDelivery: .staleDelivery
        case .clientClosed: .clientClosed
        case .alreadyStarted: .alreadyStarted
        case .invalidArgument: .invalidArgument
        case .protocolError: .protocolError
        }
    }

    /// True when the same operation may succeed after a reconnect (publishes in flight at a drop,
    /// commands sent while reconnecting, a connection refused by a restarting broker).
    public var isRetryable: Bool {
        switch self {
        case .connectFailed, .allServersFailed, .connectionLost, .notConnected: true
        case .connectionClosed(let code, _): code == 320 || code == 501 || code == 504 || code == 505 || code == 506
        default: false
        }
    }

    public var message: String {
        switch self {
        case .invalidURI(let uri, let reason): "invalid broker URI '\(uri)': \(reason)"
        case .connectFailed(let server, let reason): "cannot connect to \(server): \(reason)"
        case .allServersFailed(let errors):
            "no broker reachable (" + errors.map(\.message).joined(separator: "; ") + ")"
        case .channelClosed(let code, let text): "broker closed the channel: \(code) \(text)"
        case .connectionClosed(let code, let text): "broker closed the connection: \(code) \(text)"
        case .connectionLost(let reason): "connection to the broker lost: \(reason)"
        case .notConnected: "not connected to the broker (reconnecting); retry later"
        case .staleDelivery(let tag):
            "delivery \(tag) belongs to a channel or connection that has closed; the broker requeued it"
        case .clientClosed: "the AMQP client is closed"
        case .alreadyStarted: "the AMQP client was already started"
        case .invalidArgument(let text): "invalid argument: \(text)"
        case .protocolError(let text): "AMQP protocol error: \(text)"
        }
    }
}
