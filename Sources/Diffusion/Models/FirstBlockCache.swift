// Step caching in the manner of diffusers 0.42.1 hooks/first_block_cache.py (FirstBlockCache, after ParaAttention's
// "first block cache" and TeaCache): at every step the first transformer block runs; when its output residual
// changed, relative to the last step that ran every block, by no more than the threshold —
//     mean|r₀ − r₀_prev| / mean|r₀_prev| ≤ threshold                    (FBCHeadBlockHook._should_compute_remaining_blocks)
// the remaining blocks are skipped and the output of block 0 plus the rest of the network's residual at that last
// full step is used instead (first_block_cache.py:97-107). Unlike the hook, whose state spans the whole batch of
// one forward, the state here is per image: its rows (the conditional row and, with guidance, the unconditional
// one, which DiTPipeline puts in the same forward, so both CFG halves share the decision as they do in diffusers)
// decide together, and no other image in the batch changes that decision.
import Foundation

/// One image's cache across the steps of a sampling loop (first_block_cache.py `FBCSharedBlockState`).
/// Used from one thread at a time: the sampling loop that owns it.
public final class FirstBlockCacheState {
    /// Skip the remaining blocks when the relative change of block 0's residual is ≤ this (> 0).
    public let threshold: Double
    /// Block 0 output − input at the last step that ran every block   [R, N, E]  (`head_block_residual`)
    var headResidual: [Float] = []
    /// Last block output − block 0 output at that step                 [R, N, E]  (`tail_block_residuals[0]`)
    var tailResidual: [Float] = []
    /// Forwards that ran every block, and forwards that ran block 0 only.
    public private(set) var computedSteps = 0
    public private(set) var skippedSteps = 0
    /// The relative change measured at each forward after the first (for tests and logs).
    public private(set) var changes: [Double] = []

    public init(threshold: Double) {
        self.threshold = threshold
    }

    /// Whether the remaining blocks must run, given block 0's residual of this image's rows now (`r0`, [R·N·E]).
    /// Records the decision; a computed step must then `store` its residuals.
    func shouldCompute(headResidual r0: UnsafeBufferPointer<Float>) -> Bool {
        guard headResidual.count == r0.count, !tailResidual.isEmpty else {
            computedSteps += 1
            return true
        }
        // mean|r₀ − r₀_prev| / mean|r₀_prev|, summed in Double (torch: float32 means, then .item())
        var change = 0.0, previous = 0.0
        for i in 0..<r0.count {
            change += Double(abs(r0[i] - headResidual[i]))
            previous += Double(abs(headResidual[i]))
        }
        let relative = previous > 0 ? change / previous : .infinity
        changes.append(relative)
        if relative > threshold {
            computedSteps += 1
            return true
        }
        skippedSteps += 1
        return false
    }

    /// After a step that ran every block: block 0's residual and the tail's residual of this image's rows.
    func store(headResidual r0: [Float], tailResidual tail: [Float]) {
        headResidual = r0
        tailResidual = tail
    }
}

/// The rows of one forward that belong to one cached image (its conditional row, then its unconditional row when
/// guided) and that image's state.
public struct FirstBlockCacheGroup {
    public let rows: [Int]
    public let state: FirstBlockCacheState

    public init(rows: [Int], state: FirstBlockCacheState) {
        self.rows = rows
        self.state = state
    }
}
