# ngx_goim: two NGINX dynamic modules and two daemons.
#
#   make              install missing Debian packages, build everything
#   make run          build, then run router, job and nginx in the foreground
#   make test         build and run every test (TESTS='t/a.t t/b.t' for some)
#   make test SANITIZE=1
#                     daemons and unit tests with ASan+UBSan, nginx under
#                     valgrind; any finding fails the run
#   make test TEST_NGINX_LIB=/path/to/test-nginx/lib
#                     the same .t files with openresty's Test::Nginx
#                     instead of t/lib's compatible harness
#   make static       nginx 1.22.1 with both modules linked in, into
#                     build/static (scripts/build-static.sh)
#   make clean

SHELL      := /bin/bash
TOP        := $(CURDIR)

ifeq ($(SANITIZE),1)
BUILD      ?= $(TOP)/build-sanitize
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
else
BUILD      ?= $(TOP)/build
SAN_FLAGS  :=
endif

NGX_BUILD  := $(TOP)/build/nginx
NGX_SRC    := /usr/share/nginx/src
GEN        := $(BUILD)/gen
# the modules are built once, in build/nginx, whatever SANITIZE says
NGX_GEN    := $(TOP)/build/gen

CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror
CPPFLAGS   := -I$(TOP)/libgoim -I$(TOP)/libgoim/uv -I$(GEN)
ALL_CFLAGS  = $(CFLAGS) $(WARN) $(SAN_FLAGS) -std=gnu11 -D_GNU_SOURCE \
              -MMD -MP
LDFLAGS    += $(SAN_FLAGS)

DAEMON_LIBS := -luv -lconfig -lprotobuf-c -lyajl -lpthread -lcrypto
JOB_LIBS    := -lrdkafka

LIB_SRCS    := $(wildcard libgoim/*.c) $(wildcard libgoim/uv/*.c)
LIB_SRCS    := $(filter-out libgoim/goim_pb.c,$(LIB_SRCS))
LIB_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) \
               $(BUILD)/obj/gen/goim.pb-c.o

ROUTER_SRCS := $(wildcard goim-router/*.c)
ROUTER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(ROUTER_SRCS))
JOB_SRCS    := $(wildcard goim-job/*.c)
JOB_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(JOB_SRCS))

# cmocka unit tests: <dir>/tests/test_<name>.c links with that part's
# objects except main.o, into build/unit/<dir>/tests/test_<name>
UNIT_SRCS   := $(wildcard libgoim/tests/test_*.c) \
               $(wildcard goim-router/tests/test_*.c) \
               $(wildcard goim-job/tests/test_*.c)
UNIT_BINS   := $(patsubst %.c,$(BUILD)/unit/%,$(UNIT_SRCS))

MODULES     := $(NGX_BUILD)/objs/ngx_goim_comet_module.so \
               $(NGX_BUILD)/objs/ngx_goim_logic_module.so

MODULE_SRCS := config $(wildcard libgoim/*.[ch] libgoim/nginx/*.[ch] \
               libgoim/goim.proto ngx_goim_*_module/*.[ch])

.PHONY: all deps modules daemons unit fuzz cli run test clean bench bench-deps \
        kafka-fetch static static-optional

all: deps daemons modules unit fuzz cli

deps:
	@./scripts/install-deps.sh

daemons: $(BUILD)/goim-router $(BUILD)/goim-job

unit: $(UNIT_BINS) $(BUILD)/unit/kafka_dump

# reads a topic's records back, for the tests of logic's producer
$(BUILD)/unit/kafka_dump: t/tools/kafka_dump.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@ -lrdkafka

# goim-cli: the command-line client tests and benchmarks share
cli: $(BUILD)/goim-cli

$(BUILD)/goim-cli: $(BUILD)/obj/clients/c/goim-cli.o \
        $(BUILD)/obj/libgoim/goim_packet.o
	$(CC) $(LDFLAGS) $^ -o $@ -lcrypto -lz

modules: $(MODULES)


# generated protobuf-c code: the one rule that makes it, for the daemons,
# the unit tests, the fuzzers and (through NGX_GOIM_GEN_DIR) the modules.
# A pattern rule with two targets: one run makes both, in build/gen and
# build-sanitize/gen alike.

%/gen/goim.pb-c.c %/gen/goim.pb-c.h: libgoim/goim.proto
	@mkdir -p $*/gen
	protoc-c --c_out=$*/gen --proto_path=libgoim libgoim/goim.proto

# named by pattern rules only (under SANITIZE=1): kept, not deleted as
# intermediate files
.SECONDARY: $(GEN)/goim.pb-c.c $(GEN)/goim.pb-c.h

$(BUILD)/obj/gen/goim.pb-c.o: $(GEN)/goim.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN)/goim.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -c $< -o $@

$(BUILD)/goim-router: $(ROUTER_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

$(BUILD)/goim-job: $(JOB_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS) $(JOB_LIBS)

# what libgoim's unit tests share (libgoim/tests/*_fixture.c), linked
# into each of them
LIB_FIXTURE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,\
                      $(wildcard libgoim/tests/*_fixture.c))

# only pattern rules name them: kept, not deleted as intermediate files
.SECONDARY: $(LIB_FIXTURE_OBJS)

$(BUILD)/unit/libgoim/tests/%: libgoim/tests/%.c $(LIB_FIXTURE_OBJS) \
        $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) $(LDFLAGS) $^ -o $@ -lcmocka \
	    $(DAEMON_LIBS)

$(BUILD)/unit/goim-router/tests/%: goim-router/tests/%.c \
        $(filter-out %/main.o,$(ROUTER_OBJS)) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -Igoim-router $(LDFLAGS) $^ -o $@ \
	    -lcmocka $(DAEMON_LIBS)

$(BUILD)/unit/goim-job/tests/%: goim-job/tests/%.c \
        $(filter-out %/main.o,$(JOB_OBJS)) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -Igoim-job $(LDFLAGS) $^ -o $@ \
	    -lcmocka $(DAEMON_LIBS) $(JOB_LIBS)


# libFuzzer targets (Debian's clang): each libgoim/fuzz/fuzz_<name>.c is
# linked with every transport-free libgoim source (libgoim/*.c) and the
# generated protobuf code, so a new target needs no rule of its own.  Run
# by t/fuzz.t for a bounded time each, from the seeds committed in
# libgoim/fuzz/corpus/<target>/.

FUZZ_BINS := $(patsubst libgoim/fuzz/%.c,$(BUILD)/fuzz/%,\
               $(wildcard libgoim/fuzz/fuzz_*.c))
FUZZ_SRCS := $(filter-out libgoim/goim_pb.c,$(wildcard libgoim/*.c)) \
             $(GEN)/goim.pb-c.c
FUZZ_LIBS := -lprotobuf-c -lyajl -lcrypto -lm

# what a target needs beyond those: FUZZ_EXTRA_<target> := sources, libs
FUZZ_EXTRA_fuzz_rpc_rbuf := libgoim/uv/goim_uv_rpc.c -luv

fuzz: $(FUZZ_BINS)

.SECONDEXPANSION:
$(BUILD)/fuzz/%: libgoim/fuzz/%.c $(FUZZ_SRCS) $(wildcard libgoim/*.h) \
        $(GEN)/goim.pb-c.h $$(filter %.c,$$(FUZZ_EXTRA_$$*))
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
	    -Ilibgoim -Ilibgoim/uv -I$(GEN) \
	    $< $(FUZZ_SRCS) $(FUZZ_EXTRA_$*) -o $@ $(FUZZ_LIBS)


# NGINX modules: Debian's own source tree and configure flags, plus ours.
# nginx adds -Werror; -Wextra (less unused parameters, which every NGINX
# handler signature has) makes the modules' warnings as strict as ours.

$(NGX_BUILD)/.configured: config $(NGX_GEN)/goim.pb-c.c $(NGX_GEN)/goim.pb-c.h
	rm -rf $(NGX_BUILD)
	mkdir -p $(NGX_BUILD)
	cp -a $(NGX_SRC)/. $(NGX_BUILD)/
	cd $(NGX_BUILD) && . ./conf_flags && NGX_GOIM_GEN_DIR=$(NGX_GEN) \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-stream=dynamic --with-stream_ssl_module \
	    --with-stream_ssl_preread_module --with-stream_realip_module \
	    --with-cc-opt="-g -O2 -fPIC -Wextra -Wno-unused-parameter" \
	    --add-dynamic-module=$(TOP) >configure.log 2>&1 \
	    || { tail -20 configure.log; exit 1; }
	touch $@

# one recipe makes both (grouped target): under -j it must not run twice
$(MODULES) &: $(NGX_BUILD)/.configured $(MODULE_SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile \
	    objs/ngx_goim_comet_module.so objs/ngx_goim_logic_module.so


# the static build: NGINX's whole source with both modules linked in,
# ~1-2 min the first time, then only what changed.  make test makes it
# too, for t/003-static.t, unless NGINX's source cannot be had (the test
# then skips and says why); a build that fails still fails make test.

STATIC_NGINX := $(TOP)/build/static/nginx-1.22.1/objs/nginx

static: $(NGX_GEN)/goim.pb-c.c $(NGX_GEN)/goim.pb-c.h
	./scripts/build-static.sh $(TOP)/build/static

static-optional: $(NGX_GEN)/goim.pb-c.c $(NGX_GEN)/goim.pb-c.h
	GOIM_STATIC_OPTIONAL=1 ./scripts/build-static.sh $(TOP)/build/static


# run: router, job and nginx (comet + logic) in the foreground

run: all
	@./scripts/run.sh


# tests

TESTS ?= t/
PROVE_ENV := TEST_NGINX_BINARY=/usr/sbin/nginx \
    TEST_NGINX_LOAD_MODULES="/usr/lib/nginx/modules/ngx_stream_module.so $(MODULES)" \
    GOIM_BUILD_DIR=$(BUILD) GOIM_STATIC_NGINX=$(STATIC_NGINX) \
    GOIM_NGINX_OBJS=$(NGX_BUILD)/objs

# openresty's Test::Nginx, when given, goes first in @INC (t/lib still
# provides Goim::*); it listens on port 1984 unless told to pick a free one
ifneq ($(TEST_NGINX_LIB),)
PROVE_INC  := -I $(TEST_NGINX_LIB) -I t/lib
PROVE_ENV  += TEST_NGINX_RANDOMIZE=1
else
PROVE_INC  := -I t/lib
endif

ifeq ($(SANITIZE),1)
PROVE_ENV += TEST_NGINX_USE_VALGRIND=1 GOIM_SANITIZE=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
endif

# playwright-core for the browser tests, from package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# the Kafka broker the Kafka tests run (jars from Maven Central, cached
# outside the tree once: scripts/kafka.sh)
kafka-fetch: deps
	@./scripts/kafka.sh fetch

test: all static-optional node_modules/.package-lock.json kafka-fetch
	$(PROVE_ENV) prove $(PROVE_INC) -r $(TESTS)

clean:
	rm -rf build build-sanitize t/servroot*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)


# benchmarks (not run by make test): build/bench/<name>

bench-deps:
	@./scripts/install-deps.sh bench

bench: bench-deps $(BUILD)/bench/router_bench $(BUILD)/bench/router_rpc_bench \
       $(BUILD)/bench/produce $(BUILD)/bench/push_rpc \
       $(BUILD)/bench/zlib_cost daemons modules cli

$(BUILD)/bench/router_bench: bench/router_bench.c \
        $(BUILD)/obj/goim-router/session.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -Igoim-router $(LDFLAGS) $^ -o $@ \
	    $(DAEMON_LIBS)

$(BUILD)/bench/router_rpc_bench: bench/router_rpc_bench.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

# comet's push RPC at a steady rate, for bench/hop.sh
$(BUILD)/bench/push_rpc: bench/push_rpc.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

# one message through zlib as comet's permessage-deflate does
$(BUILD)/bench/zlib_cost: bench/zlib_cost.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@ -lz

# goim PushMsg records into Kafka, for bench/job-kafka.pl
$(BUILD)/bench/produce: bench/produce.c $(BUILD)/obj/gen/goim.pb-c.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) $(LDFLAGS) $^ -o $@ -lrdkafka \
	    -lprotobuf-c
