// A state dir that stops taking writes (read-only, or full) while darkroomd serves, made real in the worker's own
// mount namespace (a read-only bind mount; a 64 KiB tmpfs filled to the last byte): every job is still answered
// exactly once and acked, the worker keeps serving, and it says the state dir is unusable on /readyz, in STATUS=
// and in its metrics (the contract in docs/reliability.md: the ack follows the confirmed terminal event; the
// ledger only suppresses duplicates).
import Foundation
import Glibc
import Jobs
import TestSupport
import Testing

@Suite(.serialized) struct StateDirFaults {
    /// The shell commands that make `dir` unwritable in the worker's namespace.
    static func setup(_ mode: String, _ dir: String) -> String {
        switch mode {
        case "read-only":
            return "mount --bind '\(dir)' '\(dir)' && mount -o remount,bind,ro '\(dir)'"
        default:   // full
            return "mount -t tmpfs -o size=64k tmpfs '\(dir)' && mkdir '\(dir)/ledger' '\(dir)/results' && "
                + ": > '\(dir)/ledger/finished-jobs.log' && { dd if=/dev/zero of='\(dir)/filler' bs=4k 2>/dev/null; true; }"
        }
    }

    @Test(arguments: ["read-only", "full"])
    func anUnwritableStateDirLosesNoJobAnswersOnceAndIsShownNotReady(name: String) async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        for sub in ["ledger", "results"] { try FileManager.default.createDirectory(atPath: state + "/" + sub, withIntermediateDirectories: true) }
        _ = FileManager.default.createFile(atPath: state + "/ledger/finished-jobs.log", contents: nil)
        let (worker, base) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small"], mounts: Self.setup(name, state))
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        #expect(await waitStatus(base + "/readyz", 200), "\(name): never ready:\n\(worker.output)")

        try await client.submit(job("sd1", size: 32, steps: 3), toClass: "small", id: "sd1")
        #expect(await client.waitTerminal(["sd1"], timeout: 90), "\(name): \(worker.output)")
        #expect(await waitStatus(base + "/readyz", 503, containing: "state_dir not writable", timeout: 30),
                "\(name): /readyz still ready:\n\(worker.output)")
        let scrape = try await Scrape(base)
        #expect(scrape.sum("darkroom_state_dir_writable") == 0, "\(name): \(scrape.text)")
        #expect(scrape.sum("darkroom_state_write_failures_total", ["file": "ledger"]) == 1, "\(name): \(scrape.text)")
        #expect(scrape.sum("darkroom_state_write_failures_total", ["file": "results"]) == 1, "\(name): \(scrape.text)")
        #expect(worker.output.contains("cannot write the ledger under state_dir \(state)"), "\(name): \(worker.output)")

        // The worker keeps serving; each job ends exactly once and is acked (nothing waits in the queue).
        try await client.submit(job("sd2", size: 32, steps: 3, seed: 2), toClass: "small", id: "sd2")
        #expect(await client.waitTerminal(["sd2"], timeout: 90), "\(name): \(worker.output)")
        try await stopAndExpectExit0(worker)
        #expect(try await client.barrier())
        for id in ["sd1", "sd2"] {
            let terminals = client.events(of: id).filter(\.kind.isTerminal)
            #expect(terminals.map(\.kind) == [.completed], "\(name): \(id) ended \(terminals.map(\.kind))")
        }
        #expect(await queueDepth(client, "\(ns).jobs.small") == 0, "\(name): a job was left in the queue")
        // The fault was the child's alone: this process still sees the ledger file, empty.
        #expect(((try? FileManager.default.attributesOfItem(atPath: state + "/ledger/finished-jobs.log")[.size]) as? Int) == 0)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }
}
