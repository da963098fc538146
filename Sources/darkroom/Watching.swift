import AMQP
import Foundation
import Jobs
import Worker

/// Reads a job's events from its reply queue, draws a progress bar, saves images, and ends
/// at the terminal event: the shared half of `darkroom submit --wait` and `darkroom watch`.
struct EventWatcher {
    let client: AMQPClient
    let queue: String
    let jobID: String
    let output: String
    let expectedImages: Int
    let timeout: Duration

    /// The process exit code: 0 completed, 1 failed, 2 timed out.
    func run() async throws -> Int32 {
        let (stream, continuation) = AsyncStream<Delivery>.makeStream()
        let token = try await client.consume(queue: queue, prefetch: 16) { continuation.yield($0) }
        let deadline = ContinuousClock.now + timeout
        let timer = Task { try? await Task.sleep(until: deadline); continuation.finish() }
        defer { timer.cancel() }
        var bar = ProgressBar()
        for await delivery in stream {
            try? await client.ack(delivery)
            let headers = delivery.headers.contractHeaders
            guard headers[header: HeaderName.job]?.stringValue == jobID else { continue }
            let event: JobEvent
            do {
                event = try JobEvent.decode(body: delivery.body, contentType: delivery.properties.contentType, headers: headers)
            } catch {
                warn("warning: an event of job \(jobID) could not be read: \(error)")
                continue
            }
            switch event {
            case .accepted(let e):
                bar.note("accepted by \(e.worker) (class \(e.sizeClass), batch \(e.batch) of \(e.batchSize), queued \(e.queuedMs) ms)")
            case .progress(let e):
                bar.update(step: e.step, steps: e.steps, etaMs: e.etaMs)
            case .image(let e):
                let path = imagePath(index: e.index)
                try Data(e.png).write(to: URL(fileURLWithPath: path))
                bar.note("image \(e.index): \(path) (\(e.width)x\(e.height), seed \(e.seed))")
            case .completed(let e):
                bar.finish()
                print("completed \(e.id): \(e.images) image(s), seeds \(e.seeds.map(String.init).joined(separator: ",")), "
                      + "total \(e.timings.total) ms (queue \(e.timings.queue), denoise \(e.timings.denoise), decode \(e.timings.decode))")
                try? await client.cancel(token)
                return 0
            case .failed(let e):
                bar.finish()
                warn("failed \(e.id): \(e.failure.code.rawValue): \(e.failure.message)")
                try? await client.cancel(token)
                return 1
            }
        }
        bar.finish()
        warn("timed out after \(timeout) waiting for job \(jobID) (its reply queue \(queue) keeps the events)")
        try? await client.cancel(token)
        return 2
    }

    /// `-o x.png` names the single image; otherwise `-o` is a folder and images are `<id>-<i>.png`.
    func imagePath(index: Int) -> String {
        if output.hasSuffix(".png") {
            return expectedImages <= 1 ? output : String(output.dropLast(4)) + "-\(index).png"
        }
        try? FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        return (output as NSString).appendingPathComponent("\(jobID)-\(index).png")
    }
}

/// A one-line progress bar on a terminal; plain lines otherwise.
struct ProgressBar {
    private var drawn = false
    private var lastPlain = -1

    mutating func update(step: Int, steps: Int, etaMs: Int64) {
        let eta = String(format: "%.1fs", Double(etaMs) / 1000)
        if stderrIsTerminal {
            let width = 30, filled = steps > 0 ? width * step / steps : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            warn("\r[\(bar)] \(step)/\(steps) eta \(eta)  ", newline: false)
            drawn = true
        } else if step != lastPlain {
            warn("step \(step)/\(steps) eta \(eta)")
            lastPlain = step
        }
    }

    mutating func note(_ text: String) {
        finish()
        warn(text)
    }

    mutating func finish() {
        if drawn { warn("") }
        drawn = false
    }
}
