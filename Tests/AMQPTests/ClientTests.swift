// AMQPClient against the real broker: properties, confirms, returns, acks, queue types, errors.
import Foundation
import TestSupport
import Testing
@testable import AMQP

struct ClientTests {
    static let everyHeaderKind: FieldTable = [
        "string": .string("héllo wörld"),
        "bool-true": .bool(true),
        "bool-false": .bool(false),
        "i8": .int8(-8),
        "u8": .uint8(200),
        "i16": .int16(-1600),
        "u16": .uint16(60000),
        "i32": .int32(-320_000),
        "u32": .uint32(4_000_000_000),
        "i64": .int64(-6_400_000_000_000),
        "float": .float(1.5),
        "double": .double(-2.25e100),
        "decimal": .decimal(scale: 2, value: 12345),
        "timestamp": .timestamp(1_700_000_000),
        "bytes": .bytes([0, 1, 2, 254, 255]),
        "void": .void,
        "array": .array([.int32(1), .string("two"), .bool(false), .array([.int64(3)])]),
        "table": .table(["nested": .string("yes"), "deeper": .table(["n": .int32(7)])]),
        "empty-table": .table([:]),
        "empty-array": .array([]),
    ]

    @Test("a published message arrives with every property and every header kind intact")
    func roundTripKeepsPropertiesAndHeaders() async throws {
        let q = Broker.unique("roundtrip")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            let props = MessageProperties(
                contentType: "application/json", contentEncoding: "identity", headers: Self.everyHeaderKind,
                deliveryMode: .persistent, priority: 3, correlationId: "corr-1", replyTo: "reply.queue",
                expiration: "60000", messageId: "msg-1", timestamp: 1_700_000_123, type: "job.v1",
                userId: "guest", appId: "darkroom-tests")
            let body: [UInt8] = Array(0...255) + bytes("{\"prompt\":\"a cat\"}")
            let outcome = try await client.publish(exchange: "", routingKey: q, body: body, properties: props)
            #expect(outcome == .acked)

            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 1) { box.put($0) }
            let got = try await box.wait(for: 1)
            try #require(got.count == 1)
            let d = got[0]
            #expect(d.body == body)
            #expect(d.properties == props)
            #expect(d.headers == Self.everyHeaderKind)
            #expect(d.exchange == "")
            #expect(d.routingKey == q)
            #expect(!d.redelivered)
            try await client.ack(d)
        }
    }

    @Test("headers with an empty key (top level, nested, in an array) from pika arrive flagged malformed, on the same connection")
    func emptyHeaderKeysArriveFlaggedWithoutAReconnect() async throws {
        // rabbitmq-c's amqp_read_message refuses these ("invalid parameter"), which used to cost the
        // connection and bring the same message back forever.
        let q = Broker.unique("emptykey")
        let states = Mailbox<ClientState>()
        try await Broker.withClient(cleanUp: [q], stateChanged: { states.put($0) }) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            let headers = ["{\"\": 1}", "{\"k\": {\"\": 1}}", "{\"a\": [1, {\"\": \"x\"}]}", "{\"ok\": 1}"]
            try await pikaPublish(url: Broker.urls.split(separator: ",")[0].description, headers.enumerated().map {
                PikaMessage(exchange: "", routingKey: q, body: "message \($0.offset)", headers: $0.element)
            })
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 10) { box.put($0) }
            let got = try await box.wait(for: 4, seconds: 10)
            try #require(got.count == 4, "\(got.count) of 4 delivered; client states: \(states.all)")
            #expect(got.map { String(decoding: $0.body, as: UTF8.self) } == (0..<4).map { "message \($0)" })
            #expect(got[0].malformed == "headers has an entry with an empty name")
            #expect(got[1].malformed == "headers[\"k\"] has an entry with an empty name")
            #expect(got[2].malformed == "headers[\"a\"][1] has an entry with an empty name")
            #expect(got[3].malformed == nil)
            #expect(got[0].headers[""] != nil)
            #expect(got[3].headers == ["ok": .int64(1)] || got[3].headers == ["ok": .int32(1)] || got[3].headers.count == 1)
            #expect(Set(got.map(\.connectionSerial)).count == 1)
            for d in got { try await client.ack(d) }
            #expect(try await client.queueInfo(name: q).messageCount == 0)
        }
        #expect(!states.all.contains { if case .disconnected = $0 { true } else { false } }, "\(states.all)")
    }

    @Test("a routable publish is confirmed with basic.ack, and a missing exchange fails with 404")
    func confirmsAck() async throws {
        let q = Broker.unique("confirm")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            async let a = client.publish(exchange: "", routingKey: q, body: bytes("1"))
            async let b = client.publish(exchange: "", routingKey: q, body: bytes("2"))
            async let c = client.publish(exchange: "", routingKey: q, body: bytes("3"))
            let outcomes = try await [a, b, c]
            #expect(outcomes == [.acked, .acked, .acked])
            #expect(try await client.queueInfo(name: q).messageCount == 3)

            await #expect(throws: AMQPError.channelClosed(code: 404, text: "NOT_FOUND - no exchange '\(q)-none' in vhost '/'")) {
                _ = try await client.publish(exchange: "\(q)-none", routingKey: q, body: bytes("x"))
            }
            #expect(try await client.publish(exchange: "", routingKey: q, body: bytes("4")) == .acked)

            // The completion form keeps call order.
            let outcomes2 = Mailbox<String>()
            for i in 5...9 {
                client.publish(exchange: "", routingKey: q, body: bytes("\(i)")) { r in outcomes2.put("\(i):\(r)") }
            }
            #expect(try await outcomes2.wait(for: 5) == (5...9).map { "\($0):success(AMQP.PublishOutcome.acked)" })
        }
    }

    @Test("a publish the broker refuses (full queue with reject-publish) is nacked")
    func fullQueueNacks() async throws {
        let q = Broker.unique("full")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false, arguments: [
                "x-max-length": .int32(1), "x-overflow": .string("reject-publish")])
            #expect(try await client.publish(exchange: "", routingKey: q, body: bytes("fits")) == .acked)
            #expect(try await client.publish(exchange: "", routingKey: q, body: bytes("too many")) == .nacked)
            #expect(try await client.queueInfo(name: q).messageCount == 1)
        }
    }

    @Test("a mandatory publish nobody can route comes back as returned 312 NO_ROUTE")
    func mandatoryUnroutableIsReturned() async throws {
        try await Broker.withClient { client in
            let outcome = try await client.publish(exchange: "", routingKey: Broker.unique("nowhere"), body: bytes("lost"),
                                                   mandatory: true)
            #expect(outcome == .returned(code: 312, text: "NO_ROUTE"))
            // In flight together, each return is matched to its own publish.
            let q = Broker.unique("routable")
            _ = try await client.declareQueue(name: q, durable: false, exclusive: true)
            async let a = client.publish(exchange: "", routingKey: q, body: bytes("a"), mandatory: true)
            async let b = client.publish(exchange: "", routingKey: "\(q)-none", body: bytes("b"), mandatory: true)
            async let c = client.publish(exchange: "", routingKey: q, body: bytes("c"), mandatory: true)
            let mixed = try await [a, b, c]
            #expect(mixed == [.acked, .returned(code: 312, text: "NO_ROUTE"), .acked])
            // Not mandatory: silently dropped, but acked.
            #expect(try await client.publish(exchange: "", routingKey: Broker.unique("nowhere"), body: bytes("x")) == .acked)
        }
    }

    @Test("nack with requeue brings the message back flagged redelivered; reject without requeue drops it")
    func nackRequeueRedelivers() async throws {
        let q = Broker.unique("nack")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("again"))
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 1) { box.put($0) }
            let first = try await box.wait(for: 1)
            try #require(first.count == 1)
            #expect(!first[0].redelivered)
            try await client.nack(first[0], requeue: true)
            let both = try await box.wait(for: 2)
            try #require(both.count == 2)
            #expect(both[1].redelivered)
            #expect(both[1].body == bytes("again"))
            try await client.reject(both[1], requeue: false)
            // A marker through the same queue: a requeued reject would be delivered before it.
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("marker"))
            let upToMarker = try await box.wait(for: 3)
            #expect(upToMarker.map(\.body) == [bytes("again"), bytes("again"), bytes("marker")])
            if let marker = upToMarker.last { try await client.ack(marker) }
            #expect(try await client.queueInfo(name: q).messageCount == 0)
        }
    }

    @Test("passive declare reports ready messages and consumers")
    func passiveDeclareCounts() async throws {
        let q = Broker.unique("counts")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            for i in 0..<3 { _ = try await client.publish(exchange: "", routingKey: q, body: bytes("\(i)")) }
            let before = try await client.queueInfo(name: q)
            #expect(before == QueueInfo(name: q, messageCount: 3, consumerCount: 0))
            let box = Mailbox<Delivery>()
            let token = try await client.consume(queue: q, prefetch: 10) { box.put($0) }
            try await box.wait(for: 3)
            let during = try await client.queueInfo(name: q)
            #expect(during.messageCount == 0)
            #expect(during.consumerCount == 1)
            for d in box.all { try await client.ack(d) }
            try await client.cancel(token)
            #expect(try await client.queueInfo(name: q).consumerCount == 0)

            await #expect(throws: AMQPError.self) { _ = try await client.queueInfo(name: "\(q)-missing") }
            do {
                _ = try await client.queueInfo(name: "\(q)-missing")
            } catch let e as AMQPError {
                guard case .channelClosed(let code, let text) = e else { Issue.record("\(e)"); return }
                #expect(code == 404)
                #expect(text.contains("no queue"))
            }
        }
    }

    @Test("redeclaring a queue with another type is a 406 carrying the broker's text, and the client keeps working")
    func inequivalentDeclareIs406() async throws {
        let q = Broker.unique("inequivalent")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: true, arguments: ["x-queue-type": .string("classic")])
            do {
                _ = try await client.declareQueue(name: q, durable: true, arguments: ["x-queue-type": .string("quorum")])
                Issue.record("the inequivalent declare was accepted")
            } catch let e as AMQPError {
                guard case .channelClosed(let code, let text) = e else { Issue.record("\(e)"); return }
                #expect(code == 406)
                #expect(text.contains("PRECONDITION_FAILED"))
                #expect(text.contains("x-queue-type"))
                #expect(!e.isRetryable)
            }
            // Same connection, still fine: declare, publish, consume.
            let info = try await client.declareQueue(name: q, durable: true, arguments: ["x-queue-type": .string("classic")])
            #expect(info.name == q)
            #expect(try await client.publish(exchange: "", routingKey: q, body: bytes("ok")) == .acked)
            #expect(try await client.queueInfo(name: q).messageCount == 1)
            #expect(client.isConnected)
        }
    }

    @Test("a classic queue with x-max-priority delivers higher priorities first")
    func priorityQueueOrders() async throws {
        let q = Broker.unique("priority")
        try await Broker.withClient(cleanUp: [q]) { client in
            _ = try await client.declareQueue(name: q, durable: false, arguments: ["x-max-priority": .int32(10)])
            for p: UInt8 in [0, 5, 9, 1, 7] {
                _ = try await client.publish(exchange: "", routingKey: q, body: bytes("p\(p)"),
                                             properties: MessageProperties(priority: p))
            }
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 10) { box.put($0) }
            let got = try await box.wait(for: 5)
            #expect(got.map { String(decoding: $0.body, as: UTF8.self) } == ["p9", "p7", "p5", "p1", "p0"])
            #expect(got.map(\.properties.priority) == [9, 7, 5, 1, 0])
            for d in got { try await client.ack(d) }
        }
    }

    @Test("a quorum queue with x-delivery-limit declares, binds, and counts deliveries")
    func quorumQueueDeclares() async throws {
        let q = Broker.unique("quorum")
        let x = Broker.unique("exchange")
        try await Broker.withClient(cleanUp: [q]) { client in
            let args: FieldTable = ["x-queue-type": .string("quorum"), "x-delivery-limit": .int64(3)]
            let info = try await client.declareQueue(name: q, durable: true, arguments: args)
            #expect(info == QueueInfo(name: q, messageCount: 0, consumerCount: 0))
            // Redeclaring identically is fine.
            _ = try await client.declareQueue(name: q, durable: true, arguments: args)
            try await client.declareExchange(name: x, type: "direct", durable: false, autoDelete: false)
            try await client.bind(queue: q, exchange: x, routingKey: "jobs")
            #expect(try await client.publish(exchange: x, routingKey: "jobs", body: bytes("q"), mandatory: true) == .acked)
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 1) { box.put($0) }
            let first = try await box.wait(for: 1)
            try #require(first.count == 1)
            try await client.nack(first[0], requeue: true)
            let second = try await box.wait(for: 2)
            try #require(second.count == 2)
            #expect(second[1].headers["x-delivery-count"]?.intValue == 1)
            try await client.ack(second[1])
            try await client.deleteExchange(name: x)
        }
    }

    @Test("a handler that holds a delivery for 10 s (heartbeat 2 s) still acks it, and it is not redelivered")
    func heartbeatsFlowWhileAHandlerWorks() async throws {
        let q = Broker.unique("heartbeat")
        let states = Mailbox<ClientState>()
        try await Broker.withClient(query: "heartbeat=2", cleanUp: [q], stateChanged: { states.put($0) }) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("slow job"))
            let box = Mailbox<Delivery>()
            let acked = Mailbox<String>()
            _ = try await client.consume(queue: q, prefetch: 1) { d in
                box.put(d)
                guard !d.redelivered, d.body == bytes("slow job") else { return }
                // The job: 10 s on another thread, never touching the connection, then the ack.
                Thread.sleep(forTimeInterval: 10)
                client.ack(d) { result in
                    switch result {
                    case .success: acked.put("ok")
                    case .failure(let e): acked.put("\(e)")
                    }
                }
            }
            let result = try await acked.wait(for: 1, seconds: 20)
            #expect(result == ["ok"])
            // A marker through the same queue: a redelivery of the slow job would come before it.
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("marker"))
            let upToMarker = try await box.wait(for: 2, seconds: 20)
            #expect(upToMarker.map(\.body) == [bytes("slow job"), bytes("marker")], "the message was delivered again")
            if let marker = upToMarker.last { client.ack(marker, completion: nil) }
            #expect(box.all.count == 2)
            #expect(box.all.allSatisfy { !$0.redelivered })
            let info = try await client.queueInfo(name: q)
            #expect(info.messageCount == 0)
            #expect(client.isConnected)
        }
        #expect(!states.all.contains { if case .disconnected = $0 { true } else { false } }, "\(states.all)")
    }
}
