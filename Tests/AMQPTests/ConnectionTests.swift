// The low-level Connection, on the test's own thread.
import Testing
@testable import AMQP

struct ConnectionTests {
    @Test("deliveries that arrive while waiting for a confirm are queued for nextEvent, not lost")
    func deliveriesDuringConfirmWaitAreKept() throws {
        let uri = try #require(try Broker.uris().first)
        let c = try Connection(uri: uri, connectionName: Broker.unique("lowlevel"))
        let q = Broker.unique("lowlevel")
        let control = try c.openChannel()
        _ = try c.declareQueue(channel: control, name: q, durable: false, autoDelete: false)
        defer {
            if let ch = try? c.openChannel() { _ = try? c.deleteQueue(channel: ch, name: q) }
        }

        let consumer = try c.openChannel()
        try c.qos(channel: consumer, prefetchCount: 10)
        let tag = try c.consume(channel: consumer, queue: q)
        let publisher = try c.openChannel()
        try c.confirmSelect(channel: publisher)
        var seqs: [UInt64] = []
        for i in 0..<5 {
            let seq = try c.publish(channel: publisher, exchange: "", routingKey: q, body: bytes("m\(i)"))
            seqs.append(seq)
            #expect(try c.waitForConfirm(channel: publisher, sequence: seq) == .acked)
        }
        #expect(seqs == [1, 2, 3, 4, 5])

        var got: [Delivery] = []
        while got.count < 5, let e = try c.nextEvent(timeout: .seconds(2)) {
            if case .delivery(let d) = e { got.append(d) }
        }
        #expect(got.map { String(decoding: $0.body, as: UTF8.self) } == ["m0", "m1", "m2", "m3", "m4"])
        #expect(got.allSatisfy { $0.consumerTag == tag && $0.channel == consumer })
        for d in got { try c.ack(d) }

        // A server channel.close: close-ok is sent, the id can be opened again, and the error carries 406.
        #expect(throws: AMQPError.self) {
            _ = try c.declareQueue(channel: control, name: q, durable: true)
        }
        #expect(!c.isChannelOpen(control))
        let reopened = try c.openChannel(id: control)  // the same id: works only because close-ok was sent
        #expect(try c.declareQueue(channel: reopened, name: q, passive: true).messageCount == 0)

        // After cancel + close, acks of that channel's deliveries are stale.
        try c.cancel(channel: consumer, consumerTag: tag)
        try c.closeChannel(consumer)
        #expect(throws: AMQPError.staleDelivery(deliveryTag: got[0].deliveryTag)) { try c.ack(got[0]) }
        _ = try c.deleteQueue(channel: reopened, name: q)
        c.close()
        #expect(!c.isOpen)
    }
}
