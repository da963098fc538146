# Darkroom: `make test` and `make demo` set up everything they need on a fresh Debian machine.
SWIFT ?= swift
BUILD_FLAGS ?=
export DARKROOM_BROKER_URLS ?= amqp://guest:guest@127.0.0.1:$(or $(DARKROOM_BROKER_PORT),5672)/

.PHONY: deps broker-start broker-stop build release test demo chaos fuzz clean

deps:
	ops/deps

broker-start: deps
	ops/broker start

broker-stop:
	ops/broker stop

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release $(BUILD_FLAGS)

# The whole suite, against the real local broker, then the ops tests (units, scale, install). The broker is stopped afterwards
# only if this run started it.
test: deps
	@started=0; ops/broker status >/dev/null 2>&1 || started=1; \
	ops/broker start || exit 1; \
	$(SWIFT) build --build-tests $(BUILD_FLAGS) && $(SWIFT) test --skip-build $(BUILD_FLAGS) \
	  && bash ops/tests/run-all.sh; rc=$$?; \
	if [ $$started = 1 ]; then ops/broker stop; fi; exit $$rc

demo: deps
	ops/demo

# libFuzzer on the JSON reader, job validation and config parsing, FUZZ_SECONDS (60) each; not part of `make test`.
fuzz:
	fuzz/run.sh

clean:
	rm -rf .build out

# The reliability scenarios (docs/reliability.md): worker kills, broker restarts, a 3-node cluster, malformed
# input, resource faults, a soak. Not part of `make test`. One scenario: make chaos SCENARIO=kills
chaos: deps
	ops/chaos/run $(SCENARIO)
