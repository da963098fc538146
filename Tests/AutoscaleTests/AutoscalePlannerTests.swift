// The autoscaler's decisions, table by table: scale up on depth, the hysteresis band holds, the
// cool-down blocks, min/max clamp, zero depth falls to min, other hosts' consumers count as capacity.
import Autoscale
import Config
import Foundation
import Testing

struct AutoscaleRow: CustomTestStringConvertible, Sendable {
    let name: String
    let depth: Int
    let consumers: Int
    let running: Int
    var policy = ScalingPolicy(minWorkers: 1, maxWorkers: 6, targetDepthPerWorker: 4, hysteresis: 0.25,
                               cooldown: 300)
    /// Seconds since the class last changed; nil: never.
    var changedSecondsAgo: Double? = nil
    let expected: ScaleDecision.Verdict

    var testDescription: String { name }
}

private func scale(_ from: Int, _ to: Int, _ reason: ScaleAction.Reason) -> ScaleDecision.Verdict {
    .scale(ScaleAction(className: "small", from: from, to: to, reason: reason))
}

let autoscaleDecisionTable: [AutoscaleRow] = [
    AutoscaleRow(name: "deep queue scales up to what the depth needs", depth: 20, consumers: 2, running: 2,
                 expected: scale(2, 5, .backlog)),
    AutoscaleRow(name: "just above the band scales up by one", depth: 11, consumers: 2, running: 2,
                 expected: scale(2, 3, .backlog)),
    AutoscaleRow(name: "at the top of the band holds", depth: 10, consumers: 2, running: 2,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "at the bottom of the band holds", depth: 6, consumers: 2, running: 2,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "below the band scales down to what the depth needs", depth: 5, consumers: 3, running: 3,
                 expected: scale(3, 2, .idle)),
    AutoscaleRow(name: "zero depth scales down to min", depth: 0, consumers: 4, running: 4,
                 expected: scale(4, 1, .idle)),
    AutoscaleRow(name: "zero depth with min 0 stops the class", depth: 0, consumers: 2, running: 2,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: scale(2, 0, .idle)),
    AutoscaleRow(name: "zero depth at min holds", depth: 0, consumers: 1, running: 1,
                 expected: .hold(.atMinimum)),
    AutoscaleRow(name: "idle class with min 0 and nothing queued holds", depth: 0, consumers: 0, running: 0,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "a job for a stopped class starts one worker", depth: 1, consumers: 0, running: 0,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: scale(0, 1, .backlog)),
    AutoscaleRow(name: "huge depth is clamped to max", depth: 1000, consumers: 2, running: 2,
                 expected: scale(2, 6, .backlog)),
    AutoscaleRow(name: "at max with backlog holds", depth: 1000, consumers: 6, running: 6,
                 expected: .hold(.atMaximum)),
    AutoscaleRow(name: "cool-down blocks a scale up", depth: 20, consumers: 2, running: 2, changedSecondsAgo: 120,
                 expected: .hold(.coolingDown)),
    AutoscaleRow(name: "cool-down blocks a scale down", depth: 0, consumers: 4, running: 4, changedSecondsAgo: 299,
                 expected: .hold(.coolingDown)),
    AutoscaleRow(name: "after the cool-down the change goes ahead", depth: 20, consumers: 2, running: 2,
                 changedSecondsAgo: 300, expected: scale(2, 5, .backlog)),
    AutoscaleRow(name: "below min is raised at once, cool-down or not", depth: 0, consumers: 0, running: 0,
                 changedSecondsAgo: 10, expected: scale(0, 1, .belowMinimum)),
    AutoscaleRow(name: "above max is lowered at once, cool-down or not", depth: 50, consumers: 8, running: 8,
                 changedSecondsAgo: 10, expected: scale(8, 6, .aboveMaximum)),
    AutoscaleRow(name: "consumers on other hosts count as capacity", depth: 20, consumers: 5, running: 1,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "other hosts' consumers reduce what is added here", depth: 28, consumers: 5, running: 1,
                 expected: scale(1, 3, .backlog)),
    AutoscaleRow(name: "local workers still starting count as capacity", depth: 12, consumers: 1, running: 3,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "no hysteresis scales on any excess", depth: 9, consumers: 2, running: 2,
                 policy: ScalingPolicy(minWorkers: 1, maxWorkers: 6, targetDepthPerWorker: 4, hysteresis: 0),
                 expected: scale(2, 3, .backlog)),
    AutoscaleRow(name: "an unusable policy changes nothing", depth: 100, consumers: 1, running: 1,
                 policy: ScalingPolicy(minWorkers: 3, maxWorkers: 2, targetDepthPerWorker: 4),
                 expected: .hold(.invalidPolicy)),
]

@Suite("autoscaler")
struct AutoscaleTests {
    static let now = Date(timeIntervalSince1970: 1_795_867_200)

    @Test(arguments: autoscaleDecisionTable)
    func decision(row: AutoscaleRow) {
        let config = AutoscaleConfig(defaults: ScalingPolicy(), classes: ["small": row.policy])
        let lastChange = row.changedSecondsAgo.map { ["small": Self.now.addingTimeInterval(-$0)] } ?? [:]
        let decisions = AutoscalePlanner.decide(
            classes: [ClassObservation(className: "small", depth: row.depth, consumers: row.consumers)],
            current: ["small": row.running], config: config, lastChange: lastChange, now: Self.now)
        #expect(decisions.count == 1)
        #expect(decisions.first?.verdict == row.expected)
        #expect(decisions.first?.current == row.running)
    }

    @Test func planListsOnlyChangesPerClassWithTheirOwnPolicies() {
        let config = AutoscaleConfig(
            defaults: ScalingPolicy(minWorkers: 1, maxWorkers: 2, targetDepthPerWorker: 10),
            classes: ["large": ScalingPolicy(minWorkers: 0, maxWorkers: 3, targetDepthPerWorker: 1)])
        let actions = AutoscalePlanner.plan(
            classes: [
                ClassObservation(className: "small", depth: 12, consumers: 1),  // within band for target 10
                ClassObservation(className: "large", depth: 5, consumers: 1),   // needs 5, max 3
                ClassObservation(className: "medium", depth: 100, consumers: 1), // default policy: max 2
            ],
            current: ["small": 1, "large": 1, "medium": 1], config: config,
            lastChange: ["medium": Self.now.addingTimeInterval(-3600)], now: Self.now)
        #expect(actions == [
            ScaleAction(className: "large", from: 1, to: 3, reason: .backlog),
            ScaleAction(className: "medium", from: 1, to: 2, reason: .backlog),
        ])
    }

    @Test func repeatedPlansConvergeWithoutFlapping() {
        // Apply each plan as if systemd did it; with a steady depth the count settles and stays.
        let config = AutoscaleConfig(defaults: ScalingPolicy(minWorkers: 1, maxWorkers: 8,
                                                                  targetDepthPerWorker: 4, cooldown: 0))
        var running = 1
        var history: [Int] = []
        for _ in 0..<6 {
            let actions = AutoscalePlanner.plan(
                classes: [ClassObservation(className: "small", depth: 18, consumers: running)],
                current: ["small": running], config: config, lastChange: [:], now: Self.now)
            if let action = actions.first { running = action.to }
            history.append(running)
        }
        #expect(history == [5, 5, 5, 5, 5, 5])
    }

    @Test func policyProblemsNameTheKeys() {
        #expect(ScalingPolicy().problems().isEmpty)
        let bad = ScalingPolicy(minWorkers: -1, maxWorkers: -2, targetDepthPerWorker: 0, hysteresis: 1.5,
                                cooldown: -1).problems()
        #expect(bad.count == 5)
        #expect(bad.contains { $0.hasPrefix("min_workers") })
        #expect(bad.contains { $0.hasPrefix("target_depth_per_worker") })
    }

    @Test func stateRoundTripsThroughItsFileAndRecordsChanges() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-autoscale-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("autoscale.json").path
        #expect(try AutoscaleState.load(from: path) == AutoscaleState())
        var state = AutoscaleState()
        state.record([ScaleAction(className: "small", from: 1, to: 2, reason: .backlog)], at: Self.now)
        try state.save(to: path)
        #expect(try AutoscaleState.load(from: path).lastChange == ["small": Self.now])
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: AutoscaleStateError.self) { try AutoscaleState.load(from: path) }
    }
}
