// Settings, states and tokens of the daemon-facing AMQPClient.

public struct ClientSettings: Sendable {
    /// Brokers, tried in order on every (re)connect.
    public var uris: [AMQPURI]
    /// Shown by the broker (management UI, `rabbitmqctl list_connections client_properties`).
    public var connectionName: String
    /// Reconnect backoff: first delay, doubled per failed attempt up to `reconnectMaxDelay`, with ±20% jitter.
    public var reconnectInitialDelay: Duration
    public var reconnectMaxDelay: Duration
    /// Longest wait for the answer to one RPC (declare, bind, qos, consume ...) before the connection is
    /// treated as dead.
    public var rpcTimeout: Duration

    public init(uris: [AMQPURI], connectionName: String = "darkroom",
                reconnectInitialDelay: Duration = .milliseconds(500), reconnectMaxDelay: Duration = .seconds(30),
                rpcTimeout: Duration = .seconds(30)) {
        self.uris = uris
        self.connectionName = connectionName
        self.reconnectInitialDelay = reconnectInitialDelay
        self.reconnectMaxDelay = reconnectMaxDelay
        self.rpcTimeout = rpcTimeout
    }

    /// From a list of URIs separated by commas or spaces (the DARKROOM_BROKER_URLS form).
    public init(urls: String, connectionName: String = "darkroom") throws {
        self.init(uris: try AMQPURI.parseList(urls), connectionName: connectionName)
    }
}

/// Reported through `AMQPClient`'s `stateChanged` callback, on the client's I/O thread (keep it short).
public enum ClientState: Sendable, Equatable {
    /// Connected (first time or again); `server` is the URI used, password masked.
    case connected(server: String)
    /// The connection dropped; publishes in flight failed with a retryable error.
    case disconnected(AMQPError)
    /// The next connection attempt (1, 2, ...) starts after `delay`.
    case reconnecting(attempt: Int, delay: Duration)
    /// `close()` finished.
    case closed
    /// A consumer stopped receiving while the connection lives: the broker cancelled it (its queue was
    /// deleted or its process crashed) or refused to subscribe it again (404). It is subscribed again
    /// after `retryIn`, then backing off like reconnects; `.consumerUp` follows once it is back.
    case consumerDown(queue: String, reason: String, retryIn: Duration)
    case consumerUp(queue: String)
}

/// A binding of a consumer's own server-named queue.
public struct QueueBinding: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String

    public init(exchange: String, routingKey: String = "") {
        self.exchange = exchange
        self.routingKey = routingKey
    }
}

/// Names one consumer started with `AMQPClient.consume`, for `cancel`.
public struct ConsumerToken: Sendable, Hashable {
    public let id: UInt64
    public let queue: String
}
