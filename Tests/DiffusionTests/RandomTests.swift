import Testing
@testable import Diffusion

// Vectors from docs/engine.md §5.5 (torch 2.15, x86-64 AVX2 path). Each comment is the Python that produced it.
@Suite struct TorchRandomTests {
    func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    @Test func mt19937SeedZeroMatchesStdMt19937() {
        var mt = MT19937(seed: 0)
        #expect([mt.next32(), mt.next32(), mt.next32()] == [2_357_136_044, 2_546_248_239, 3_071_714_933])
    }

    @Test func onlyLowThirtyTwoSeedBitsMatter() {
        var a = TorchGenerator(seed: Int64(-1)), b = TorchGenerator(seed: UInt64(0xffff_ffff))
        #expect(a.randn(count: 20) == b.randn(count: 20))
        var c = TorchGenerator(seed: Int64(5) + (1 << 32)), d = TorchGenerator(seed: Int64(5))
        #expect(c.randn(count: 3) == d.randn(count: 3))
    }

    @Test func smallCountUsesDoubleBoxMuller() {
        // torch.randn(4, generator=torch.Generator().manual_seed(0))
        var g = TorchGenerator(seed: Int64(0))
        #expect(bits(g.randn(count: 4)) == [0x3fc5_3f5c, 0xbe96_3c50, 0xc00b_7149, 0x3f11_84b6])
    }

    @Test func cachedSecondSampleSurvivesAcrossCalls() {
        // g = torch.Generator().manual_seed(0); torch.randn(1, generator=g); torch.randn(1, generator=g)
        var g = TorchGenerator(seed: Int64(0))
        let first = g.randn(count: 1), second = g.randn(count: 1)
        #expect(bits(first + second) == [0x3fc5_3f5c, 0xbe96_3c50])
        g.manualSeed(0)  // manual_seed clears the cache
        #expect(bits(g.randn(count: 1)) == [0x3fc5_3f5c])
    }

    @Test func sixteenWideAVX2Path() {
        // torch.randn(16, generator=torch.Generator().manual_seed(0))[:4]
        var g = TorchGenerator(seed: Int64(0))
        #expect(bits(Array(g.randn(count: 16).prefix(4))) == [0xbf90_1b85, 0xbf93_808a, 0xbe80_4bd6, 0xbede_255d])
    }

    @Test func latentSizedDrawSeedZero() {
        // torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
        var g = TorchGenerator(seed: Int64(0))
        let v = bits(g.randn(shape: [1, 4, 64, 64]).data)
        #expect(Array(v.prefix(4)) == [0xbf90_1b85, 0xbf93_808a, 0xbe80_4bd6, 0xbede_255d])
        #expect(Array(v.suffix(2)) == [0xbfae_e87b, 0xbf8a_02b8])
    }

    @Test func tailRecomputedFromFreshUniforms() {
        // torch.randn(17, generator=torch.Generator().manual_seed(42))
        var g = TorchGenerator(seed: Int64(42))
        let v = bits(g.randn(count: 17))
        #expect(v.first == 0x3ff6_a529)
        #expect(Array(v.suffix(2)) == [0x3f5c_1fb0, 0xbe9e_9482])
    }

    @Test func seed33SingleAndDoubleBatch() {
        // torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(33))
        var g = TorchGenerator(seed: Int64(33))
        let one = bits(g.randn(count: 4 * 32 * 32))
        #expect(Array(one.prefix(4)) == [0x3f19_f3a9, 0x3dde_b3c8, 0xbee6_5608, 0x3f48_bdda])
        #expect(Array(one.suffix(2)) == [0x3fa4_9792, 0xbd93_4da3])
        // torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(33))
        var h = TorchGenerator(seed: Int64(33))
        let two = bits(h.randn(count: 2 * 4 * 32 * 32))
        #expect(Array(two.prefix(4)) == Array(one.prefix(4)))
        #expect(Array(two.suffix(2)) == [0xbe89_b16a, 0xbefd_7577])
    }

    @Test func consecutiveCallsContinueTheStream() {
        // torch.randn(16, generator=g) twice == torch.randn(32, generator=g') once
        var g = TorchGenerator(seed: Int64(7)), h = TorchGenerator(seed: Int64(7))
        let twice = g.randn(count: 16) + g.randn(count: 16)
        #expect(bits(twice) == bits(h.randn(count: 32)))
    }

    @Test func avx2PathAtSelectedIndicesOf35() {
        // torch.randn(35, generator=torch.Generator().manual_seed(0))[[0,1,7,8,15,16,33,34]] (AVX2 kernel)
        var g = TorchGenerator(seed: Int64(0))
        let v = bits(g.randn(count: 35))
        #expect([0, 1, 7, 8, 15, 16, 33, 34].map { v[$0] } ==
                [0xbf90_1b85, 0xbf93_808a, 0xc007_5fc1, 0x3ea5_0138, 0xbe7d_367c, 0xbfad_23c2, 0x3dad_2087, 0xbf99_9e2b])
    }

    #if os(Linux)
    @Test func genericKernelMatchesTorchDefaultCapabilityWithGlibc() {
        // ATEN_CPU_CAPABILITY=default: torch.randn(35, generator=torch.Generator().manual_seed(0))[[0,1,7,8,15,16,33,34]]
        var g = TorchGenerator(seed: Int64(0), kernel: .generic)
        let v = bits(g.randn(count: 35))
        #expect([0, 1, 7, 8, 15, 16, 33, 34].map { v[$0] } ==
                [0xbf90_1b85, 0xbf93_808a, 0xc007_5fc2, 0x3ea5_0138, 0xbe7d_365a, 0xbfad_23c2, 0x3dad_209f, 0xbf99_9e2c])
    }
    #endif
}
