// Message properties (basic class content header), deliveries, returns and queue facts,
// shared by publish and consume.
import CRabbitMQ

/// The AMQP basic properties of a message. `nil` / empty means "not set".
public struct MessageProperties: Sendable, Equatable {
    public var contentType: String?
    public var contentEncoding: String?
    /// Application headers; an empty table is not sent.
    public var headers: FieldTable
    public var deliveryMode: DeliveryMode?
    /// 0...255 (a classic queue with x-max-priority N honours 0...N).
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string (AMQP says so).
    public var expiration: String?
    public var messageId: String?
    /// Seconds since the Unix epoch.
    public var timestamp: UInt64?
    public var type: String?
    /// If set, RabbitMQ checks it equals the connection's user.
    public var userId: String?
    public var appId: String?

    public init(contentType: String? = nil, contentEncoding: String? = nil, headers: FieldTable = [:],
                deliveryMode: DeliveryMode? = nil, priority: UInt8? = nil, correlationId: String? = nil,
                replyTo: String? = nil, expiration: String? = nil, messageId: String? = nil,
                timestamp: UInt64? = nil, type: String? = nil, userId: String? = nil, appId: String? = nil) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }
}

public enum DeliveryMode: UInt8, Sendable {
    case transient = 1
    case persistent = 2
}

/// A message delivered to a consumer. Ack it with the API it came from (`AMQPClient.ack` or
/// `Connection.ack`); it remembers its connection and channel, so a delivery whose channel has since
/// closed is reported as `AMQPError.staleDelivery` rather than acked on the wrong channel.
public struct Delivery: Sendable {
    public let body: [UInt8]
    public let properties: MessageProperties
    public var headers: FieldTable { properties.headers }
    public let deliveryTag: UInt64
    public let redelivered: Bool
    public let exchange: String
    public let routingKey: String
    public let consumerTag: String
    /// The channel it arrived on.
    public let channel: UInt16
    /// `Connection.serial` of the connection it arrived on (a new connection gets a new serial).
    public let connectionSerial: UInt64
    /// Which opening of `channel` it arrived on (channel ids are reused after a close).
    let channelSerial: UInt64
    /// What in its content header breaks AMQP 0-9-1 (an empty field name in `headers`, which rabbitmq-c
    /// cannot copy), nil when nothing does. Such a delivery is readable but should be dead-lettered.
    public let malformed: String?
}

/// A mandatory message the broker could not route (basic.return).
public struct ReturnedMessage: Sendable {
    public let replyCode: UInt16
    public let replyText: String
    public let exchange: String
    public let routingKey: String
    public let body: [UInt8]
    public let properties: MessageProperties
}

/// What the broker said about one published message (publisher confirms).
public enum PublishOutcome: Sendable, Equatable {
    /// The broker took responsibility for it (routed to every queue, or unroutable and not mandatory).
    case acked
    /// The broker refused it (e.g. a quorum queue's leader was lost, or x-overflow=reject-publish).
    case nacked
    /// Mandatory and unroutable: returned with this code (312 NO_ROUTE) and text.
    case returned(code: UInt16, text: String)
}

/// What a queue.declare (possibly passive) answered.
public struct QueueInfo: Sendable, Equatable {
    public let name: String
    /// Messages ready for delivery (not counting unacked ones).
    public let messageCount: UInt32
    public let consumerCount: UInt32
}

// MARK: - conversion

extension CArena {
    func properties(_ p: MessageProperties) throws -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func set(_ value: String?, _ flag: Int32, _ field: WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>) throws {
            guard let value else { return }
            guard value.utf8.count <= 255 else {
                throw AMQPError.invalidArgument("a message property is longer than 255 bytes: '\(value.prefix(40))...'")
            }
            c[keyPath: field] = bytes(value)
            flags |= UInt32(flag)
        }
        try set(p.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG, \.content_type)
        try set(p.contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG, \.content_encoding)
        try set(p.correlationId, AMQP_BASIC_CORRELATION_ID_FLAG, \.correlation_id)
        try set(p.replyTo, AMQP_BASIC_REPLY_TO_FLAG, \.reply_to)
        try set(p.expiration, AMQP_BASIC_EXPIRATION_FLAG, \.expiration)
        try set(p.messageId, AMQP_BASIC_MESSAGE_ID_FLAG, \.message_id)
        try set(p.type, AMQP_BASIC_TYPE_FLAG, \.type)
        try set(p.userId, AMQP_BASIC_USER_ID_FLAG, \.user_id)
        try set(p.appId, AMQP_BASIC_APP_ID_FLAG, \.app_id)
        if !p.headers.isEmpty {
            c.headers = try table(p.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        if let m = p.deliveryMode {
            c.delivery_mode = m.rawValue
            flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        }
        if let pr = p.priority {
            c.priority = pr
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let t = p.timestamp {
            c.timestamp = t
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        c._flags = flags
        return c
    }
}

func decodeProperties(_ c: amqp_basic_properties_t) throws -> MessageProperties {
    let f = c._flags
    func has(_ flag: Int32) -> Bool { f & UInt32(flag) != 0 }
    func str(_ flag: Int32, _ b: amqp_bytes_t) -> String? { has(flag) ? copyString(b) : nil }
    return MessageProperties(
        contentType: str(AMQP_BASIC_CONTENT_TYPE_FLAG, c.content_type),
        contentEncoding: str(AMQP_BASIC_CONTENT_ENCODING_FLAG, c.content_encoding),
        headers: has(AMQP_BASIC_HEADERS_FLAG) ? try decodeTable(c.headers) : [:],
        deliveryMode: has(AMQP_BASIC_DELIVERY_MODE_FLAG) ? DeliveryMode(rawValue: c.delivery_mode) : nil,
        priority: has(AMQP_BASIC_PRIORITY_FLAG) ? c.priority : nil,
        correlationId: str(AMQP_BASIC_CORRELATION_ID_FLAG, c.correlation_id),
        replyTo: str(AMQP_BASIC_REPLY_TO_FLAG, c.reply_to),
        expiration: str(AMQP_BASIC_EXPIRATION_FLAG, c.expiration),
        messageId: str(AMQP_BASIC_MESSAGE_ID_FLAG, c.message_id),
        timestamp: has(AMQP_BASIC_TIMESTAMP_FLAG) ? c.timestamp : nil,
        type: str(AMQP_BASIC_TYPE_FLAG, c.type),
        userId: str(AMQP_BASIC_USER_ID_FLAG, c.user_id),
        appId: str(AMQP_BASIC_APP_ID_FLAG, c.app_id))
}
