# herd: `make run` starts herdd with the embedded default config,
# `make test` builds twice (normal and ASan+UBSan) and runs every test on both.
BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# Warnings are errors in the developers' and CI builds, not in a packager's.
WERROR     ?= -DHERD_WERROR=ON

.PHONY: all bootstrap build build-san run test test-normal test-san bench format format-check clean

all: build

bootstrap:
	@./scripts/bootstrap

$(BUILD)/CMakeCache.txt: | bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) $(CMAKE_ARGS)

$(BUILD_SAN)/CMakeCache.txt: | bootstrap
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=ON $(WERROR) $(CMAKE_ARGS)

build: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-san: bootstrap $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)

run: build
	./$(BUILD)/supervisor/herdd

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-san: build-san
	cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS)

test: test-normal test-san

bench: build
	@for b in bench/*/run; do echo "== $$b"; $$b $(BUILD) || exit 1; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# What CI checks: every C file as `make format` leaves it.
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-release-gcc build-release-clang
