import AMQP
import Config
import Jobs

// The seams between the contract (Jobs), the configuration and the AMQP layer: header and
// argument conversion, the topology from the config, and declaring it.

extension FieldValue {
    init(_ value: HeaderValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int64(i)
        }
    }
}

extension Array where Element == Header {
    public var fieldTable: FieldTable {
        var t: FieldTable = [:]
        for h in self { t[h.key] = FieldValue(h.value) }
        return t
    }
}

extension FieldTable {
    /// The contract's view of AMQP headers: strings and integers, the rest left out.
    public var contractHeaders: [Header] {
        sorted { $0.key < $1.key }.compactMap { key, value in
            if let i = value.intValue { return Header(key, .int(i)) }
            if let s = value.stringValue { return Header(key, .string(s)) }
            return nil
        }
    }
}

extension DarkroomConfig {
    /// The size classes as the contract sees them (budgets only).
    public var contractClasses: [Jobs.SizeClass] {
        classes.map { Jobs.SizeClass(name: $0.name, maxPixels: $0.maxPixels, maxWidth: $0.maxWidth, maxHeight: $0.maxHeight) }
    }

    public var contractTopology: Topology {
        let type: Jobs.QueueType = queueType == .quorum ? .quorum(deliveryLimit: deliveryLimit) : .classic(maxPriority: maxPriority)
        return Topology(namespace: namespace, sizeClasses: contractClasses, queueType: type)
    }

    /// Client settings for the broker URLs (credentials file applied).
    public func clientSettings(name: String) throws -> ClientSettings {
        let urls = try broker.urlsWithCredentials()
        let uris = try urls.map { url in
            var uri = try AMQPURI(url)
            if !url.contains("heartbeat=") { uri.heartbeat = broker.heartbeat }   // the URL's own setting wins
            if uri.tls {   // broker.tls_* for amqps URLs; the URL's own query parameters win
                if uri.caCertFile == nil { uri.caCertFile = broker.tlsCAFile }
                if uri.certFile == nil { uri.certFile = broker.tlsCertFile; uri.keyFile = broker.tlsKeyFile }
                if !url.contains("verify=") { uri.verifyPeer = broker.tlsVerify }
                if !url.contains("auth_mechanism=") && broker.authMechanism == .external {
                    guard uri.certFile != nil else {
                        throw AMQPError.invalidURI(uri: uri.description, reason: "broker.auth_mechanism = \"external\" needs a client certificate")
                    }
                    uri.authMechanism = .external
                }
            }
            return uri
        }
        var s = ClientSettings(uris: uris, connectionName: name)
        s.reconnectMaxDelay = .seconds(broker.reconnectMaxBackoff)
        return s
    }
}

extension AMQPClient {
    /// Declares every exchange, queue and binding of the contract's topology (idempotent).
    public func declare(_ topology: Topology) async throws {
        for e in topology.exchanges {
            try await declareExchange(name: e.name, type: e.kind.rawValue, durable: e.durable, autoDelete: e.autoDelete)
        }
        for q in topology.queues {
            _ = try await declareQueue(name: q.name, durable: q.durable, exclusive: q.exclusive, autoDelete: q.autoDelete,
                                       arguments: q.arguments.fieldTable)
        }
        for b in topology.bindings {
            try await bind(queue: b.queue, exchange: b.exchange, routingKey: b.routingKey)
        }
    }

    /// Publishes one contract event to the job's reply queue, persistent, correlation id echoed,
    /// mandatory (a reply queue that does not exist gives `.returned`, not a silent drop), and waits
    /// for the broker's confirm.
    public func publish(_ event: OutgoingEvent, replyTo: String, correlationId: String?) async throws -> PublishOutcome {
        let props = MessageProperties(contentType: event.contentType, headers: event.headers.fieldTable,
                                      deliveryMode: .persistent, correlationId: correlationId)
        return try await publish(exchange: "", routingKey: replyTo, body: event.body, properties: props, mandatory: true)
    }
}
