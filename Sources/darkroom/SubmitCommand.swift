import AMQP
import ArgumentParser
import Config
import Foundation
import Jobs
import Worker

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a v1 job (from flags or a JSON file) and optionally wait for its images.",
        discussion: """
            The job goes to the size class given with --class, else the smallest class whose pixel budget \
            fits --width x --height (a worker re-routes a job that landed on the wrong class). Events go to \
            the reply queue <namespace>.reply.<id>, which expires an hour after its last use; `darkroom watch ID` \
            reads it later.
            """)

    @OptionGroup var broker: BrokerOptions

    @Option(name: .long, help: "A JSON file holding the job body; flags given too override its fields.")
    var json: String?
    @Option(name: .customLong("class"), help: "Size class to route to (default: by pixel budget).")
    var sizeClass: String?
    @Option(help: "Job id (default: generated).") var id: String?
    @Option(help: "Model name (default: the worker's).") var model: String?
    @OptionGroup var options: JobOptions
    @Flag(help: "Ask for preview PNGs in progress events.") var preview = false
    @Option(name: .customLong("progress-every"), help: "Steps between progress events.") var progressEvery: Int64?
    @Option(help: "RFC 3339 time after which the job must not start.") var deadline: String?
    @Option(help: "Message priority (0-255).") var priority: UInt8?
    @Flag(help: "Wait for the events, draw a progress bar, save the images.") var wait = false
    @Option(name: .shortAndLong, help: "Where images go: a folder, or a .png path for one image.") var output = "."
    @Option(help: "Seconds to wait for the terminal event.") var timeout: Int = 600

    func run() async throws {
        var request = JobRequest()
        if let json {
            guard let data = FileManager.default.contents(atPath: json) else { throw CLIError("cannot read \(json)") }
            do {
                request = try JobRequest.parse(body: Array(data))
            } catch {
                throw CLIError("\(json): \(error.failure.message)")
            }
        }
        request.v = 1
        if let id { request.id = id }
        if let model { request.model = model }
        options.apply(to: &request)
        if preview { request.preview = true }
        if let progressEvery { request.progressEvery = progressEvery }
        if let deadline { request.deadline = deadline }
        let jobID = request.id ?? JobID.generate()
        guard JobID.isValid(jobID) else { throw CLIError("job id \"\(jobID)\" is not 1..128 of [A-Za-z0-9._:-]") }
        request.id = jobID

        let cfg = try broker.load()
        let route: String
        if let sizeClass {
            guard cfg.sizeClass(named: sizeClass) != nil else {
                throw CLIError("unknown size class \"\(sizeClass)\" (configured: \(cfg.classes.map(\.name).joined(separator: ", ")))")
            }
            route = sizeClass
        } else if let w = request.width, let h = request.height {
            guard let c = cfg.sizeClass(width: Int(w), height: Int(h)) else {
                throw CLIError("\(w)x\(h) is larger than every size class (largest: \(cfg.classes.last.map { "\($0.name), \($0.maxPixels) pixels" } ?? "none"))")
            }
            route = c.name
        } else {
            route = cfg.classes.first?.name ?? "small"
        }

        let client = try await broker.connect(cfg)
        let topology = cfg.contractTopology
        let replyQueue = "\(cfg.namespace).reply.\(jobID)"
        _ = try await client.declareQueue(name: replyQueue, durable: true, exclusive: false, autoDelete: false,
                                          arguments: ["x-expires": .int64(3_600_000)])
        let props = MessageProperties(contentType: "application/json", deliveryMode: .persistent,
                                      priority: priority, correlationId: jobID, replyTo: replyQueue, messageId: jobID)
        let outcome = try await client.publish(exchange: topology.jobsExchange, routingKey: route,
                                               body: request.encodedBody(), properties: props, mandatory: true)
        switch outcome {
        case .acked: break
        case .nacked:
            await client.close()
            throw CLIError("the broker refused job \(jobID) (nack); nothing was queued")
        case .returned(let code, let text):
            await client.close()
            throw CLIError("job \(jobID) could not be routed to class \"\(route)\" (\(code) \(text)); run `darkroom topology declare`")
        }
        warn("submitted \(jobID) to \(topology.jobQueue(forClass: route))")
        guard wait else {
            print(jobID)
            await client.close()
            return
        }
        let watcher = EventWatcher(client: client, queue: replyQueue, jobID: jobID, output: output,
                                   expectedImages: Int(request.count ?? 1), timeout: .seconds(timeout))
        let code = try await watcher.run()
        await client.close()
        if code != 0 { throw ExitCode(code) }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a submitted job's events (from its reply queue) until it ends; save its images.")
    @OptionGroup var broker: BrokerOptions
    @Argument(help: "The job id.") var id: String
    @Option(help: "Reply queue (default <namespace>.reply.<id>, as `darkroom submit` makes).") var queue: String?
    @Option(name: .shortAndLong, help: "Where images go: a folder, or a .png path for one image.") var output = "."
    @Option(help: "Seconds to wait for the terminal event.") var timeout: Int = 600

    func run() async throws {
        let cfg = try broker.load()
        let client = try await broker.connect(cfg)
        let q = queue ?? "\(cfg.namespace).reply.\(id)"
        do {
            _ = try await client.queueInfo(name: q)
        } catch {
            await client.close()
            throw CLIError("no reply queue \(q) for job \(id) (it expires an hour after its last use)")
        }
        let code = try await EventWatcher(client: client, queue: q, jobID: id, output: output, expectedImages: 16,
                                          timeout: .seconds(timeout)).run()
        await client.close()
        if code != 0 { throw ExitCode(code) }
    }
}
