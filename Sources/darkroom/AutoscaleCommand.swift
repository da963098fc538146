// `darkroom autoscale`: one autoscaler pass. Reads each class's queue depth and consumer count with a
// passive declare, counts the local darkroom@<class>-<n> instances through systemctl, decides with
// AutoscalePlanner under the [autoscale] policy, prints every decision, and (without --dry-run) applies
// the changes through darkroom-scale (ops/scale) and records when each class changed in the state file.
// ops/autoscale and darkroom-autoscale.service (every minute, from darkroom-autoscale.timer) run it.
import AMQP
import ArgumentParser
import Autoscale
import Config
import Foundation
import Jobs
import Systemd
import Worker

struct AutoscaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoscale",
        abstract: "One autoscaler pass: scale each class's local workers to its queue depth ([autoscale] policy).",
        discussion: """
            Prints one line per class: depth, consumers, local workers and the decision (scale to N, or hold \
            and why). Changes go through darkroom-scale (ops/scale), which needs root. SYSTEMCTL names the \
            systemctl to run (default: systemctl in PATH), DARKROOM_SCALE the darkroom-scale to run (default: \
            next to this binary, else ops/scale of the checkout, else /usr/local/bin/darkroom-scale).
            """)

    static let defaultStatePath = "/var/lib/darkroom-autoscale/state.json"

    @OptionGroup var broker: BrokerOptions

    @Flag(name: .customLong("dry-run"), help: "Print the decisions; change nothing and write no state.")
    var dryRun = false

    @Option(help: "State file: when each class last changed (for the cool-down).")
    var state: String = AutoscaleCommand.defaultStatePath

    func run() async throws {
        let cfg = try broker.load()
        let observations = try await observe(cfg)
        let current: [String: Int]
        do {
            current = try Systemctl.fromEnvironment().runningCounts()
        } catch {
            throw CLIError("cannot count the running workers: \(error)")
        }
        var memory: AutoscaleState
        do {
            memory = try AutoscaleState.load(from: state)
        } catch {
            throw CLIError("\(error)")
        }
        let now = Date()
        let decisions = AutoscalePlanner.decide(classes: observations, current: current, config: cfg.autoscale,
                                                lastChange: memory.lastChange, now: now)
        for d in decisions { print(d.description) }
        let actions = decisions.compactMap(\.action)
        guard !dryRun, !actions.isEmpty else { return }

        let scaler = ProcessInfo.processInfo.environment["DARKROOM_SCALE"].map { ScaleCommand(executable: $0) }
            ?? ScaleCommand.locate()
        var applied: [ScaleAction] = []
        var failures: [String] = []
        for action in actions {
            do {
                let output = try scaler.scale(className: action.className, to: action.to)
                if !output.isEmpty { print(output) }
                applied.append(action)
            } catch {
                failures.append("\(action.className): \(error)")
            }
        }
        memory.record(applied, at: now)
        do {
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: state).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            try memory.save(to: state)
        } catch {
            failures.append("\(error)")
        }
        if !failures.isEmpty {
            throw CLIError("autoscale: " + failures.joined(separator: "; "))
        }
    }

    /// Depth and consumers of every class's queue. A queue that does not exist yet (topology not
    /// declared) counts as empty, with a note on stderr.
    func observe(_ cfg: DarkroomConfig) async throws -> [ClassObservation] {
        let client = try await broker.connect(cfg)
        let topology = cfg.contractTopology
        var out: [ClassObservation] = []
        do {
            for c in cfg.classes {
                let queue = topology.jobQueue(forClass: c.name)
                do {
                    let info = try await client.queueInfo(name: queue)
                    out.append(ClassObservation(className: c.name, depth: Int(info.messageCount),
                                                consumers: Int(info.consumerCount)))
                } catch AMQPError.channelClosed(code: 404, _) {
                    warn("autoscale: queue \(queue) does not exist (declare it: darkroom topology declare); counted as empty")
                    out.append(ClassObservation(className: c.name, depth: 0, consumers: 0))
                }
            }
        } catch {
            await client.close()
            throw CLIError("cannot read the queues: \(error)")
        }
        await client.close()
        return out
    }
}
