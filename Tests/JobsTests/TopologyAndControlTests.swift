import TestSupport
import Testing
@testable import Jobs

@Test func classicTopologyMatchesTheContract() {
    let t = Topology(sizeClasses: Fixtures.classes, queueType: .classic(maxPriority: 10))
    #expect(t.exchanges == [
        ExchangeSpec(name: "darkroom.jobs", kind: .direct, durable: true, autoDelete: false),
        ExchangeSpec(name: "darkroom.dead", kind: .fanout, durable: true, autoDelete: false),
        ExchangeSpec(name: "darkroom.control", kind: .fanout, durable: true, autoDelete: false),
    ])
    #expect(t.queues.map(\.name) == ["darkroom.dead", "darkroom.jobs.small", "darkroom.jobs.medium", "darkroom.jobs.large"])
    #expect(t.queues.allSatisfy { $0.durable && !$0.exclusive && !$0.autoDelete })
    #expect(t.queues[0].arguments.isEmpty)
    #expect(t.queues[1].arguments == [Header("x-dead-letter-exchange", .string("darkroom.dead")), Header("x-max-priority", .int(10))])
    #expect(t.bindings == [
        BindingSpec(queue: "darkroom.dead", exchange: "darkroom.dead", routingKey: ""),
        BindingSpec(queue: "darkroom.jobs.small", exchange: "darkroom.jobs", routingKey: "small"),
        BindingSpec(queue: "darkroom.jobs.medium", exchange: "darkroom.jobs", routingKey: "medium"),
        BindingSpec(queue: "darkroom.jobs.large", exchange: "darkroom.jobs", routingKey: "large"),
    ])
    #expect(t.jobQueue(forClass: "small") == "darkroom.jobs.small")
    #expect(t.controlQueue.exclusive && t.controlQueue.autoDelete && t.controlQueue.name.isEmpty)
}

@Test func quorumTopologyUsesDeliveryLimitAndANamespace() {
    let t = Topology(namespace: "test7", sizeClasses: [SizeClass(name: "small", maxPixels: 65536)], queueType: .quorum(deliveryLimit: 5))
    #expect(t.exchanges.map(\.name) == ["test7.jobs", "test7.dead", "test7.control"])
    #expect(t.queues[0] == QueueSpec(name: "test7.dead", durable: true, exclusive: false, autoDelete: false,
                                     arguments: [Header("x-queue-type", .string("quorum"))]))
    #expect(t.queues[1].arguments == [
        Header("x-dead-letter-exchange", .string("test7.dead")), Header("x-queue-type", .string("quorum")),
        Header("x-delivery-limit", .int(5)),
    ])
    #expect(t.jobsExchange == "test7.jobs" && t.deadExchange == "test7.dead" && t.controlExchange == "test7.control")
}

@Test func cancelControlMessageDecodesAndEncodes() throws {
    #expect(try ControlMessage.decode(Array(#"{"v": 1, "cancel": "job-42"}"#.utf8)) == .cancel(jobID: "job-42"))
    #expect(String(decoding: ControlMessage.cancel(jobID: "job-42").encodedBody(), as: UTF8.self) == #"{"v":1,"cancel":"job-42"}"#)
    for bad in ["", "[]", #"{"v":2,"cancel":"a"}"#, #"{"v":1}"#, #"{"v":1,"cancel":"a b"}"#, #"{"v":1,"cancel":"a","pause":true}"#,
                #"{"v":1,"cancel":7}"#, #"{"v":1,"status":false}"#, #"{"v":1,"status":true,"cancel":"a"}"#] {
        #expect(throws: ControlMessage.DecodeError.self, "\(bad)") { try ControlMessage.decode(Array(bad.utf8)) }
    }
}

@Test func statusControlMessageAndTheWorkersReport() throws {
    #expect(try ControlMessage.decode(Array(#"{"v": 1, "status": true}"#.utf8)) == .status)
    #expect(String(decoding: ControlMessage.status.encodedBody(), as: UTF8.self) == #"{"v":1,"status":true}"#)
    let report = WorkerStatusReport(worker: "h-small-1", pid: 42, classes: ["small"], models: ["tiny-shapes"], state: "consuming",
                                    batch: .init(id: "k3x9", jobs: 4), jobsDone: 12, jobsFailed: 1, uptimeSeconds: 3725)
    #expect(try WorkerStatusReport.decode(report.encoded()) == report)
    #expect(report.line == "h-small-1  small  tiny-shapes  consuming  batch k3x9 (4 jobs)  12 done  1 failed  up 1h02m")
    #expect(throws: WorkerStatusReport.DecodeError.self) { try WorkerStatusReport.decode(Array(#"{"v":2}"#.utf8)) }
    #expect(throws: WorkerStatusReport.DecodeError.self) { try WorkerStatusReport.decode(Array("not json".utf8)) }
}
