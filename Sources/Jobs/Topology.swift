// The broker topology of the contract as plain data; the worker and `darkroom topology
// declare` declare it over AMQP.

public enum QueueType: Equatable, Sendable {
    /// Classic queues with `x-max-priority` (1...255; RabbitMQ advises at most 10).
    case classic(maxPriority: Int)
    /// Quorum queues with `x-delivery-limit` (poison messages dead-letter after that many redeliveries).
    case quorum(deliveryLimit: Int)
}

public struct ExchangeSpec: Equatable, Sendable {
    public enum Kind: String, Sendable { case direct, fanout }
    public var name: String
    public var kind: Kind
    public var durable: Bool
    public var autoDelete: Bool
}

public struct QueueSpec: Equatable, Sendable {
    /// Empty for a server-named queue.
    public var name: String
    public var durable: Bool
    public var exclusive: Bool
    public var autoDelete: Bool
    public var arguments: [Header]
}

public struct BindingSpec: Equatable, Sendable {
    public var queue: String
    public var exchange: String
    public var routingKey: String
}

public struct Topology: Equatable, Sendable {
    public var namespace: String
    public var exchanges: [ExchangeSpec]
    /// The dead-letter queue, then one job queue per size class, in class order.
    public var queues: [QueueSpec]
    public var bindings: [BindingSpec]

    public init(namespace: String = "darkroom", sizeClasses: [SizeClass], queueType: QueueType) {
        self.namespace = namespace
        let jobs = "\(namespace).jobs", dead = "\(namespace).dead", control = "\(namespace).control"
        exchanges = [
            ExchangeSpec(name: jobs, kind: .direct, durable: true, autoDelete: false),
            ExchangeSpec(name: dead, kind: .fanout, durable: true, autoDelete: false),
            ExchangeSpec(name: control, kind: .fanout, durable: true, autoDelete: false),
        ]
        var typeArguments: [Header] = []
        var deadArguments: [Header] = []
        switch queueType {
        case .classic(let maxPriority):
            typeArguments = [Header("x-max-priority", .int(Int64(maxPriority)))]
        case .quorum(let deliveryLimit):
            typeArguments = [Header("x-queue-type", .string("quorum")), Header("x-delivery-limit", .int(Int64(deliveryLimit)))]
            deadArguments = [Header("x-queue-type", .string("quorum"))]
        }
        queues = [QueueSpec(name: dead, durable: true, exclusive: false, autoDelete: false, arguments: deadArguments)]
        bindings = [BindingSpec(queue: dead, exchange: dead, routingKey: "")]
        for c in sizeClasses {
            let name = "\(jobs).\(c.name)"
            queues.append(QueueSpec(name: name, durable: true, exclusive: false, autoDelete: false,
                                    arguments: [Header("x-dead-letter-exchange", .string(dead))] + typeArguments))
            bindings.append(BindingSpec(queue: name, exchange: jobs, routingKey: c.name))
        }
    }

    /// Producers publish jobs here with routing key = size class name.
    public var jobsExchange: String { "\(namespace).jobs" }
    public var deadExchange: String { "\(namespace).dead" }
    public var deadQueue: String { "\(namespace).dead" }
    public var controlExchange: String { "\(namespace).control" }

    public func jobQueue(forClass name: String) -> String { "\(namespace).jobs.\(name)" }

    /// Each worker's own control queue: server-named, exclusive, auto-delete, bound to the
    /// control exchange (fanout, so the routing key is ignored).
    public var controlQueue: QueueSpec {
        QueueSpec(name: "", durable: false, exclusive: true, autoDelete: true, arguments: [])
    }
}
