// A producer that is not our own client: pika (Debian's python3-pika) through pika_publish.py.
import Foundation

/// One message for `pikaPublish`; `headers` is a JSON object written as text, so that it can hold keys
/// our own client would never send (`{"": 1}`).
public struct PikaMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: String
    public var headers: String?
    public var replyTo: String?
    public var correlationId: String?

    public init(exchange: String, routingKey: String, body: String, headers: String? = nil, replyTo: String? = nil,
                correlationId: String? = nil) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.headers = headers
        self.replyTo = replyTo
        self.correlationId = correlationId
    }

    var json: String {
        func quoted(_ s: String) -> String {
            (try? JSONEncoder().encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
        }
        var fields = ["\"exchange\": \(quoted(exchange))", "\"routing_key\": \(quoted(routingKey))", "\"body\": \(quoted(body))"]
        if let headers { fields.append("\"headers\": \(headers)") }
        if let replyTo { fields.append("\"reply_to\": \(quoted(replyTo))") }
        if let correlationId { fields.append("\"correlation_id\": \(quoted(correlationId))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

public struct PikaError: Error, CustomStringConvertible {
    public let description: String
}

/// Publishes `messages` in order with pika, each confirmed by the broker at `url`. It runs on a thread of
/// its own (never blocking the tests' cooperative threads, which an in-process worker needs).
public func pikaPublish(url: String, _ messages: [PikaMessage]) async throws {
    let input = "[" + messages.map(\.json).joined(separator: ",\n") + "]"
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
        Thread.detachNewThread {
            done.resume(with: Result {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
                p.arguments = [repoRoot + "/Tests/TestSupport/pika_publish.py", url]
                let stdin = Pipe(), out = Pipe()
                p.standardInput = stdin
                p.standardOutput = out
                p.standardError = out
                try p.run()
                stdin.fileHandleForWriting.write(Data(input.utf8))
                try stdin.fileHandleForWriting.close()
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                guard p.terminationStatus == 0 else { throw PikaError(description: "pika_publish.py: \(text)") }
            })
        }
    }
}
