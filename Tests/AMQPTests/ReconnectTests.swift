// Losing the connection: reconnect, consumers back, stale acks refused, publishes fail retryably.
import Foundation
import Testing
@testable import AMQP

struct ReconnectTests {
    @Test("after the broker closes the connection the client reconnects, re-consumes, and refuses stale acks")
    func reconnectsAndConsumesAgain() async throws {
        let q = Broker.unique("reconnect")
        let name = Broker.unique("reconnect-conn")
        let states = Mailbox<ClientState>()
        try await Broker.withClient(name: name, cleanUp: [q], stateChanged: { states.put($0) }) { client in
            _ = try await client.declareQueue(name: q, durable: true)
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 5) { box.put($0) }
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("before"))
            let before = try await box.wait(for: 1)
            try #require(before.count == 1)  // held, not acked

            // Three publishes in flight at the drop: their queue process is suspended, so no confirm comes.
            let stuck = Broker.unique("stuck")
            _ = try await client.declareQueue(name: stuck, durable: false)
            try Broker.suspendQueue(stuck, true)
            defer {
                try? Broker.suspendQueue(stuck, false)
                _ = try? Broker.ctl(["delete_queue", stuck])
            }
            let results = Mailbox<Result<PublishOutcome, AMQPError>>()
            for i in 0..<3 { client.publish(exchange: "", routingKey: stuck, body: bytes("\(i)")) { results.put($0) } }
            try await Task.sleep(for: .milliseconds(300))
            #expect(results.all.isEmpty)

            #expect(try Broker.closeConnection(named: name))
            // Disconnected, then connected again (states: connected, disconnected, reconnecting, connected).
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                let s = states.all
                if s.contains(where: { if case .disconnected = $0 { true } else { false } }),
                   case .connected = s.last { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let seen = states.all
            #expect(seen.contains { if case .disconnected(let e) = $0 { e == .connectionClosed(code: 320, text: "CONNECTION_FORCED - closed by the AMQP reconnect test") } else { false } }, "\(seen)")
            #expect(seen.contains { if case .reconnecting = $0 { true } else { false } })
            guard case .connected = seen.last else { Issue.record("not reconnected: \(seen)"); return }
            let failures = try await results.wait(for: 3)
            #expect(failures.count == 3)
            for r in failures {
                guard case .failure(let e) = r else { Issue.record("in-flight publish resolved: \(r)"); continue }
                #expect(e.code == .connectionLost)
                #expect(e.isRetryable)
            }

            // The unacked message comes back, redelivered, to the re-established consumer.
            let again = try await box.wait(for: 2, seconds: 10)
            try #require(again.count == 2)
            #expect(again[1].redelivered)
            #expect(again[1].body == bytes("before"))
            #expect(again[1].connectionSerial != before[0].connectionSerial)

            // Its old copy belongs to the dead connection: reported, not sent on the new one.
            await #expect(throws: AMQPError.staleDelivery(deliveryTag: before[0].deliveryTag)) {
                try await client.ack(before[0])
            }
            try await client.ack(again[1])

            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("after"))
            let after = try await box.wait(for: 3)
            try #require(after.count == 3)
            #expect(after[2].body == bytes("after"))
            try await client.ack(after[2])
            #expect(try await client.queueInfo(name: q).messageCount == 0)
        }
    }

    @Test("a consumer's own server-named queue is declared and bound again after the connection drops")
    func ownQueueIsDeclaredAgainOnReconnect() async throws {
        let x = Broker.unique("fanout")
        let name = Broker.unique("ownqueue-conn")
        let states = Mailbox<ClientState>()
        try await Broker.withClient(name: name, stateChanged: { states.put($0) }) { client in
            try await client.declareExchange(name: x, type: "fanout", durable: false, autoDelete: false)
            let box = Mailbox<Delivery>()
            _ = try await client.consumeOwnQueue(label: "control", bindings: [QueueBinding(exchange: x)], prefetch: 5) { d in
                box.put(d)
                client.ack(d, completion: nil)
            }
            _ = try await client.publish(exchange: x, routingKey: "", body: bytes("before"))
            #expect(try await box.wait(for: 1).count == 1)
            #expect(try Broker.closeConnection(named: name))
            let connectedAgain = try await states.wait(for: 4, seconds: 15)   // connected was first; disconnected, reconnecting, connected
            #expect(connectedAgain.filter { if case .connected = $0 { true } else { false } }.count >= 1, "\(connectedAgain)")
            // Publish until the re-bound queue receives (the reconnect takes a moment; unrouted publishes are dropped).
            var got: [Delivery] = []
            for _ in 0..<100 where got.count < 2 {
                _ = try? await client.publish(exchange: x, routingKey: "", body: bytes("after"))
                got = try await box.wait(for: 2, seconds: 0.2)
            }
            #expect(got.count >= 2 && got.last?.body == bytes("after"), "nothing arrived after the reconnect: \(states.all)")
            try await client.deleteExchange(name: x)
        }
        #expect(!states.all.contains { if case .consumerDown = $0 { true } else { false } }, "\(states.all)")
    }

    @Test("a consumer whose queue is deleted is reported down, retried with backoff, and consumes again once the queue is back")
    func droppedConsumerIsRetried() async throws {
        let q = Broker.unique("dropped")
        let states = Mailbox<ClientState>()
        try await Broker.withClient(cleanUp: [q], stateChanged: { states.put($0) }) { client in
            _ = try await client.declareQueue(name: q, durable: false)
            let box = Mailbox<Delivery>()
            _ = try await client.consume(queue: q, prefetch: 5) { d in
                box.put(d)
                client.ack(d, completion: nil)
            }
            try await client.deleteQueue(name: q)          // the broker cancels the consumer; re-subscribing is a 404
            var downs: [ClientState] = []
            for _ in 0..<100 where downs.count < 3 {
                downs = states.all.filter { if case .consumerDown(q, _, _) = $0 { true } else { false } }
                if downs.count < 3 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(downs.count >= 3, "\(states.all)")
            let delays = downs.compactMap { if case .consumerDown(_, _, let d) = $0 { d } else { nil } }
            #expect(delays.dropFirst().elementsEqual(delays.dropFirst().sorted()), "backoff does not grow: \(delays)")
            #expect(downs.dropFirst().contains { if case .consumerDown(_, let reason, _) = $0 { reason.contains("404") } else { false } },
                    "\(downs)")
            _ = try await client.declareQueue(name: q, durable: false)
            var up = false
            for _ in 0..<100 where !up {
                up = states.all.contains(.consumerUp(queue: q))
                if !up { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(up, "\(states.all)")
            _ = try await client.publish(exchange: "", routingKey: q, body: bytes("back"))
            #expect(try await box.wait(for: 1).first?.body == bytes("back"))
            #expect(client.isConnected)
        }
        #expect(!states.all.contains { if case .disconnected = $0 { true } else { false } }, "\(states.all)")
    }

    @Test("with several URIs the first unreachable one is skipped; with none reachable start says why for each")
    func failoverTriesURIsInOrder() async throws {
        let good = try Broker.uris()
        let dead = try AMQPURI("amqp://guest:guest@127.0.0.1:1/?connection_timeout=500")
        let states = Mailbox<ClientState>()
        let client = AMQPClient(settings: ClientSettings(uris: [dead] + good), stateChanged: { states.put($0) })
        try await client.start()
        #expect(client.isConnected)
        #expect(states.all == [.connected(server: good[0].description)])
        await client.close()
        #expect(states.all.last == .closed)
        await #expect(throws: AMQPError.clientClosed) { _ = try await client.queueInfo(name: "x") }

        let none = AMQPClient(settings: ClientSettings(uris: [dead, dead]))
        do {
            try await none.start()
            Issue.record("started with no broker")
        } catch let e as AMQPError {
            guard case .allServersFailed(let each) = e else { Issue.record("\(e)"); return }
            #expect(each.count == 2)
            #expect(e.isRetryable)
            #expect(e.description.contains("127.0.0.1:1"))
        }
        await none.close()
    }

    @Test("wrong credentials fail start with the broker's 403 text")
    func badCredentialsAreReported() async throws {
        guard let first = try Broker.uris().first else { return }
        var wrong = first
        wrong.password = "definitely-wrong"
        let client = AMQPClient(settings: ClientSettings(uris: [wrong]))
        do {
            try await client.start()
            Issue.record("logged in with a wrong password")
        } catch let e as AMQPError {
            #expect(e.description.contains("ACCESS_REFUSED") || e.description.contains("login"), "\(e)")
        }
        await client.close()
    }
}

struct ClosingTests {
    @Test("close() first finishes what was already asked: queued publishes are sent and confirmed")
    func closeFinishesQueuedWork() async throws {
        let q = Broker.unique("closing")
        let client = AMQPClient(settings: ClientSettings(uris: try Broker.uris()))
        try await client.start()
        _ = try await client.declareQueue(name: q, durable: false)
        let results = Mailbox<Result<PublishOutcome, AMQPError>>()
        for i in 0..<20 { client.publish(exchange: "", routingKey: q, body: bytes("\(i)")) { results.put($0) } }
        await client.close()
        #expect(results.all.count == 20)
        #expect(results.all.allSatisfy { if case .success(.acked) = $0 { true } else { false } })
        client.publish(exchange: "", routingKey: q, body: bytes("late")) { results.put($0) }
        #expect(results.all.count == 21)
        if case .failure(let e) = results.all.last { #expect(e == .clientClosed) } else { Issue.record("published after close") }

        let info = try await Broker.withClient(cleanUp: [q]) { other in try await other.queueInfo(name: q) }
        #expect(info.messageCount == 20)
    }
}
