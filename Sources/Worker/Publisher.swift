import AMQP
import Core
import Foundation
import Jobs

/// The publisher role: every event of every job goes out through one serial queue on one
/// channel, so a job's events reach its reply queue in order, and each publish waits for the
/// broker's confirm before the next. `done` reports the confirm (or the failure).
final class Publisher: Sendable {
    struct Item: Sendable {
        let event: OutgoingEvent
        let replyTo: String
        let correlationID: String?
        let done: @Sendable (Result<PublishOutcome, any Error>) -> Void
    }

    private let continuation: AsyncStream<Item>.Continuation
    private let pending = Locked(0)
    private let task: Task<Void, Never>

    init(client: AMQPClient) {
        let (stream, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        let pending = self.pending
        task = Task {
            for await item in stream {
                let result: Result<PublishOutcome, any Error>
                do {
                    result = .success(try await client.publish(item.event, replyTo: item.replyTo, correlationId: item.correlationID))
                } catch {
                    result = .failure(error)
                }
                item.done(result)
                pending.withLock { $0 -= 1 }
            }
        }
    }

    func send(_ event: OutgoingEvent, replyTo: String, correlationID: String?,
              done: @escaping @Sendable (Result<PublishOutcome, any Error>) -> Void = { _ in }) {
        pending.withLock { $0 += 1 }
        continuation.yield(Item(event: event, replyTo: replyTo, correlationID: correlationID, done: done))
    }

    /// Sends and waits for the confirm.
    func sendAndWait(_ event: OutgoingEvent, replyTo: String, correlationID: String?) async -> Result<PublishOutcome, any Error> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<PublishOutcome, any Error>, Never>) in
            send(event, replyTo: replyTo, correlationID: correlationID) { c.resume(returning: $0) }
        }
    }

    /// Publishes still queued or waiting for their confirm.
    var backlog: Int { pending.value }

    func finish() async {
        continuation.finish()
        await task.value
    }
}

