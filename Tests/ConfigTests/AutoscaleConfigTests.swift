// AutoscaleConfigTests: the [autoscale] section — defaults, per-class tables inheriting the defaults,
// environment overrides, and the errors for bad values, unknown fields and undefined classes.
import Testing
@testable import Config

@Test func autoscaleDefaultsAreTheDocumentedPolicy() throws {
    let a = DarkroomConfig.builtInDefaults().autoscale
    #expect(a.defaults == DarkroomConfig.Autoscale.Policy(minWorkers: 1, maxWorkers: 4, targetDepthPerWorker: 4,
                                                          hysteresis: 0.25, cooldown: 300))
    #expect(a.classes.isEmpty)
    #expect(a.policy(for: "large") == a.defaults)
}

@Test func aClassTableOverridesOnlyTheKeysItSets() throws {
    let c = try parse("""
        [autoscale]
        max_workers = 6
        cooldown = 120
        [autoscale.classes.large]
        min_workers = 0
        max_workers = 1
        [autoscale.classes.small]
        hysteresis = 0.5
        """)
    #expect(c.autoscale.defaults.maxWorkers == 6 && c.autoscale.defaults.cooldown == 120)
    let large = c.autoscale.policy(for: "large")
    #expect(large.minWorkers == 0 && large.maxWorkers == 1)
    #expect(large.targetDepthPerWorker == 4 && large.hysteresis == 0.25 && large.cooldown == 120)
    let small = c.autoscale.policy(for: "small")
    #expect(small.hysteresis == 0.5 && small.maxWorkers == 6 && small.minWorkers == 1)
    #expect(c.autoscale.policy(for: "medium") == c.autoscale.defaults)
}

@Test func autoscaleKeysComeFromTheEnvironmentToo() throws {
    let c = try parse("[autoscale]\nmax_workers = 2\n", [
        "DARKROOM_AUTOSCALE_MAX_WORKERS": "8",
        "DARKROOM_AUTOSCALE_TARGET_DEPTH_PER_WORKER": "10",
        "DARKROOM_AUTOSCALE_CLASSES_LARGE_MAX_WORKERS": "1",
        "DARKROOM_AUTOSCALE_CLASSES_LARGE_COOLDOWN": "30.5",
    ])
    #expect(c.autoscale.defaults.maxWorkers == 8 && c.autoscale.defaults.targetDepthPerWorker == 10)
    #expect(c.autoscale.policy(for: "large").maxWorkers == 1 && c.autoscale.policy(for: "large").cooldown == 30.5)
    #expect(c.autoscale.policy(for: "large").targetDepthPerWorker == 10)
    #expect(DarkroomConfig.unrecognizedEnvironment(["DARKROOM_AUTOSCALE_CLASSES_SMALL_MIN_WORKERS": "0",
                                                    "DARKROOM_AUTOSCALE_HYSTERESIS": "0.1"]).isEmpty)
    // A class whose name has an underscore.
    let x = try parse("[classes.x_large]\nmax_pixels = 4194304\n",
                      ["DARKROOM_AUTOSCALE_CLASSES_X_LARGE_MIN_WORKERS": "0"])
    #expect(x.autoscale.policy(for: "x_large").minWorkers == 0)
}

@Test(arguments: [
    ("[autoscale]\nmin_workers = -1", [:], "autoscale.min_workers", .range, nil),
    ("[autoscale]\nhysteresis = 1.0", [:], "autoscale.hysteresis", .range, nil),
    ("[autoscale]\ntarget_depth_per_worker = 0", [:], "autoscale.target_depth_per_worker", .range, nil),
    ("[autoscale]\ncooldown = \"5m\"", [:], "autoscale.cooldown", .type, nil),
    ("[autoscale]\nmin_workers = 5", [:], "autoscale.min_workers", .invalid, nil),
    ("[autoscale]\nmax_worker = 5", [:], "autoscale.max_worker", .unknownKey, nil),
    ("autoscale = 3", [:], "autoscale", .type, nil),
    ("[autoscale.classes]\nsmall = 3", [:], "autoscale.classes.small", .type, nil),
    ("[autoscale.classes.huge]\nmax_workers = 2", [:], "autoscale.classes.huge.max_workers", .invalid, nil),
    ("[autoscale.classes.large]\nmax_workers = 0", [:], "autoscale.classes.large.max_workers", .invalid, nil),
    ("[autoscale.classes.large]\ncool_down = 1", [:], "autoscale.classes.large.cool_down", .unknownKey, nil),
    ("", ["DARKROOM_AUTOSCALE_MAX_WORKERS": "many"], "autoscale.max_workers", .type, "DARKROOM_AUTOSCALE_MAX_WORKERS"),
    ("", ["DARKROOM_AUTOSCALE_CLASSES_SMALL_MAX_WORKERS": "1000"], "autoscale.classes.small.max_workers", .range,
     "DARKROOM_AUTOSCALE_CLASSES_SMALL_MAX_WORKERS"),
    ("", ["DARKROOM_AUTOSCALE_CLASSES_SMALL_MAXIMUM": "1"], "", .unknownKey, "DARKROOM_AUTOSCALE_CLASSES_SMALL_MAXIMUM"),
] as [(String, [String: String], String, ConfigError.Code, String?)])
func invalidAutoscaleSettingsAreErrorsNamingTheKey(toml: String, env: [String: String], key: String,
                                                   code: ConfigError.Code, variable: String?) throws {
    let e = try #require(configError { try parse(toml, env) })
    #expect(e.key == key)
    #expect(e.code == code)
    #expect(e.source == (variable.map(ConfigSource.environment) ?? .file("/etc/test.toml")))
}

@Test func anAutoscaleTypoGetsASuggestion() {
    let e = configError { try parse("[autoscale]\nmin_worker = 0") }
    #expect(e?.description == "/etc/test.toml: autoscale.min_worker: unknown key; did you mean autoscale.min_workers? (unknown_key)")
}

@Test func autoscaleChangesAreReportedAndAppliedOnReload() throws {
    let old = try parse(nil)
    let new = try parse("[autoscale]\ncooldown = 60\n[autoscale.classes.large]\nmax_workers = 1")
    let changes = old.changes(to: new)
    #expect(changes.map(\.key).contains("autoscale.cooldown"))
    #expect(changes.map(\.key).contains("autoscale.classes.large.max_workers"))
    #expect(changes.allSatisfy { $0.reloadable })
    #expect(old.applyingReloadable(from: new).changes(to: new).isEmpty)
}
