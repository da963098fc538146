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
