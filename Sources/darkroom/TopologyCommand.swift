import AMQP
import ArgumentParser
import Config
import Foundation
import Jobs
import Worker

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology", abstract: "Declare or show the broker topology of the contract.",
        subcommands: [Declare.self, Show.self])

    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare the exchanges, queues and bindings (idempotent).")
        @OptionGroup var broker: BrokerOptions

        func run() async throws {
            let cfg = try broker.load()
            let client = try await broker.connect(cfg)
            let topology = cfg.contractTopology
            do {
                try await client.declare(topology)
            } catch {
                await client.close()
                throw error
            }
            for e in topology.exchanges { print("exchange \(e.name) (\(e.kind.rawValue))") }
            for q in topology.queues {
                let args = q.arguments.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                print("queue    \(q.name)\(args.isEmpty ? "" : "  " + args)")
            }
            await client.close()
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each queue with its depth and consumer count.")
        @OptionGroup var broker: BrokerOptions
        @Flag(help: "Print JSON (for ops/autoscale).") var json = false

        func run() async throws {
            let cfg = try broker.load()
            let client = try await broker.connect(cfg)
            let topology = cfg.contractTopology
            var rows: [(cls: String, queue: String, info: QueueInfo?)] = []
            for c in cfg.classes {
                let q = topology.jobQueue(forClass: c.name)
                rows.append((c.name, q, try? await client.queueInfo(name: q)))
            }
            rows.append(("", topology.deadQueue, try? await client.queueInfo(name: topology.deadQueue)))
            await client.close()
            if json {
                let items = rows.map { r -> String in
                    let depth = r.info.map { String($0.messageCount) } ?? "null"
                    let consumers = r.info.map { String($0.consumerCount) } ?? "null"
                    return "{\"class\":\"\(r.cls)\",\"queue\":\"\(r.queue)\",\"messages\":\(depth),\"consumers\":\(consumers)}"
                }
                print("[" + items.joined(separator: ",") + "]")
            } else {
                print("QUEUE".padding(toLength: 28, withPad: " ", startingAt: 0) + "MESSAGES  CONSUMERS")
                for r in rows {
                    let depth = r.info.map { String($0.messageCount) } ?? "missing"
                    let consumers = r.info.map { String($0.consumerCount) } ?? "-"
                    print(r.queue.padding(toLength: 28, withPad: " ", startingAt: 0)
                          + depth.padding(toLength: 10, withPad: " ", startingAt: 0) + consumers)
                }
            }
        }
    }
}
