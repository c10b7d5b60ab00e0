# pymaild — GNU make.
#
#   make            build everything
#   make run        install missing deps, build, start the demo in run/
#   make regress    install missing deps, build, run every test
#   make regress SANITIZE=1   the same with ASan + UBSan
#   make bench      benchmarks (figures, not pass/fail)
#   make fuzz       each libFuzzer harness of regress/fuzz for FUZZ_S seconds
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        the Debian package, in build/deb/

# The one place the version is written; the programs print it (--version).
VERSION	 = 0.3.0

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/sbin
LIBEXEC	 = $(PREFIX)/libexec/pymaild
MANDIR	 = $(PREFIX)/share/man
SYSCONF	?= /etc

PKGS	 = libbsd-overlay ldns libconfig libevent libxcrypt libseccomp \
	   libssl libcrypto libevent_openssl libpsl
# Debian package for each pkg-config name, in the same order, then the
# data and tools the build and the daemon need besides.
DEBS	 = libbsd-dev libldns-dev libconfig-dev libevent-dev libcrypt-dev \
	   libseccomp-dev libssl-dev libssl-dev libevent-dev libpsl-dev \
	   publicsuffix pkg-config
# What the tests drive besides our own code.
TESTDEBS = ldnsutils iproute2 util-linux mpop openssl
# regress/ops: the administrator's own tools run against the daemon.
TESTDEBS += logrotate fail2ban
# regress/package: make deb, systemd-analyze for the unit, and
# systemd-nspawn to start it under systemd.
TESTDEBS += debhelper dpkg-dev fakeroot lintian systemd systemd-container
# regress/tls: mail clients and a TLS scanner we did not write.
TESTDEBS += swaks libnet-ssleay-perl testssl.sh
# regress/shared: Dovecot's Maildir++ quota reads the store beside us.
TESTDEBS += dovecot-core
# regress/auth: the RFC 7208 test suite, as pyspf ships it.
TESTDEBS += python3-spf
SPF_SUITE = /usr/share/doc/python3-spf/rfc7208-tests.yml.gz
# regress/auth: DKIM signatures checked by verifiers we did not write.
TESTDEBS += python3-dkim opendkim-tools
# regress/shared: a GlusterFS volume, mounted twice, as the shared store.
TESTDEBS += glusterfs-server glusterfs-client

CC	?= cc
PYTHON	 = /usr/bin/python3
WARN	 = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
	   -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(REGRESS),1)
WARN	+= -Werror
# Test-only hooks (PYMAILD_TEST_HELPERDIR: the hostile-peer tests put a
# program of theirs in place of a helper). Never in an installed build:
# `make install` rebuilds without REGRESS=1.
CPPFLAGS += -DPYMAILD_TESTING
endif
ifeq ($(SANITIZE),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
# No system call filter (the sanitizer runtimes make calls ours do not
# list) and no leak check in the chrooted helpers (LeakSanitizer needs
# /proc, which a chroot hides).
CPPFLAGS += -DPYMAILD_SANITIZE
endif

# pkg-config is asked once per make run; the top-level targets that may
# install packages re-invoke make afterwards so the answer is fresh.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# libbsd's <sys/tree.h> uses __unused in RB_*_STATIC but its cdefs.h leaves
# it undefined (Debian #522773), so we define it for the whole build.
CPPFLAGS += -I$(CURDIR)/common -DLIBEXECDIR='"$(LIBEXEC)"' \
	    -DPYMAILD_VERSION='"$(VERSION)"' \
	    "-D__unused=__attribute__((__unused__))" \
	    -D_GNU_SOURCE
CFLAGS	 += -std=gnu11 -O2 -g $(WARN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS	 += $(SANFLAGS)
LDLIBS	 += -lmd $(PKG_LIBS) -lpthread

# The programs pymaild execs: the one list `make install` and the Debian
# package take them from (installed into LIBEXEC).
HELPERS	 = smtpd/smtpd pop3d/pop3d queued/queued mxcache/mxcache \
	   outbound/outbound
PROGS	 = pymaild/pymaild admin/pymailadm $(HELPERS)

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:.c=.o)
UNIT_SRC   = $(wildcard regress/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:.c=)
BENCH_SRC  = $(wildcard regress/bench/*.c)
BENCH_BIN  = $(BENCH_SRC:.c=)
# Test tools of regress/auth (spfcheck: the SPF evaluator on real DNS).
AUTH_SRC   = $(wildcard regress/auth/*.c)
AUTH_BIN   = $(AUTH_SRC:.c=)
# Fuzz harnesses: regress/fuzz/NAME.c, each with corpus/NAME/ (see fuzz:).
FUZZ_SRC   = $(filter-out regress/fuzz/replay.c,$(wildcard regress/fuzz/*.c))
FUZZ_NAMES = $(basename $(notdir $(FUZZ_SRC)))
FUZZ_BUILD = regress/fuzz/build
FUZZ_REPLAY = regress/unit/test_fuzz_replay
# The parsers the harnesses reach outside common/, and the folders of
# their headers.
FUZZ_EXTRA = smtpd/parse.c smtpd/data.c admin/impparse.c pymaild/reqparse.c \
	     pop3d/parse.c outbound/smtpreply.c
FUZZ_INC   = $(addprefix -I$(CURDIR)/,$(sort $(dir $(FUZZ_EXTRA))))
# Unit tests of a parser that lives in a process folder link its object
# alone (the parser needs nothing but libcommon.a, which is the point).
UNIT_EXTRA_dataframe = smtpd/data.o
UNIT_EXTRA_pop3parse = pop3d/parse.o
UNIT_EXTRA_smtpreply = outbound/smtpreply.o

# Rebuild everything when the flags change (plain vs SANITIZE=1).
FLAGSTAMP = .build-flags
FLAGS_NOW = $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(LDLIBS)
$(shell [ "$$(cat $(FLAGSTAMP) 2>/dev/null)" = '$(FLAGS_NOW)' ] || \
    printf '%s' '$(FLAGS_NOW)' > $(FLAGSTAMP))
# A rule of its own as well: make then never has to find the stamp on
# disk through its cache of the folder, which may be older than the
# line above (on a fresh clone: "No rule to make target", exit 2).
$(FLAGSTAMP):
	@printf '%s' '$(FLAGS_NOW)' > $@

.PHONY: all deps accounts run regress bench install clean fuzz fuzzdeps fuzz-build
.PHONY: progs deb debdeps
.DEFAULT_GOAL := all

all: $(PROGS) $(UNIT_BIN) $(BENCH_BIN) $(FUZZ_REPLAY) $(AUTH_BIN)

# The programs alone, what `make install` and the package need.
progs: $(PROGS)

common/libcommon.a: $(COMMON_OBJ)
	rm -f $@ && ar rcs $@ $^

# Each object also depends on its own folder's headers ($@ needs the
# second expansion to be known in a prerequisite list).
.SECONDEXPANSION:
%.o: %.c $(wildcard common/*.h) $$(wildcard $$(dir $$@)*.h) $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

define prog_rule
$(1): $$(patsubst %.c,%.o,$$(wildcard $(dir $(1))*.c)) common/libcommon.a
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) common/libcommon.a $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

# Static pattern rules: a plain pattern rule was given up after a clean
# ("No rule to make target regress/unit/test_addr") until a second run.
$(UNIT_BIN): regress/unit/test_%: regress/unit/test_%.c regress/unit/unit.h $$(UNIT_EXTRA_$$*) common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(addprefix -I$(CURDIR)/,$(dir $(UNIT_EXTRA_$*))) $(CFLAGS) $(LDFLAGS) -o $@ $< $(UNIT_EXTRA_$*) common/libcommon.a $(LDLIBS)

$(BENCH_BIN): regress/bench/%: regress/bench/%.c common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< common/libcommon.a $(LDLIBS)

$(AUTH_BIN): regress/auth/%: regress/auth/%.c regress/auth/testdns.h common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< common/libcommon.a $(LDLIBS)

# Check the libraries; as root install what is missing, else say how.
deps:
	@missing=""; \
	for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || missing=1; done; \
	command -v pkg-config >/dev/null || missing=1; \
	for b in ldns-testns unshare ip mpop openssl logrotate fail2ban-regex \
	    dh dpkg-buildpackage fakeroot lintian systemd-analyze systemd-nspawn \
	    doveadm; do command -v $$b >/dev/null || missing=1; done; \
	for b in glusterd mount.glusterfs; do \
	    PATH="$$PATH:/usr/sbin:/sbin" command -v $$b >/dev/null || missing=1; done; \
	[ -x $(PYTHON) ] || missing=1; \
	for b in swaks testssl; do command -v $$b >/dev/null || missing=1; done; \
	perl -MNet::SSLeay -e 1 2>/dev/null || missing=1; \
	[ -f $(SPF_SUITE) ] || missing=1; \
	command -v opendkim-testmsg >/dev/null || missing=1; \
	$(PYTHON) -c 'import dkim' 2>/dev/null || missing=1; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing $(DEBS) $(TESTDEBS)"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    $(DEBS) $(TESTDEBS) python3 >/dev/null || exit 1; \
	else \
		echo "deps: missing; run: sudo apt-get install $(DEBS) $(TESTDEBS) python3"; \
		exit 1; \
	fi

# The unprivileged accounts of DESIGN.md B2, as a package would create them.
accounts:
	@if [ "$$(id -u)" = 0 ]; then \
		for u in _pymaild _pymailq _pymailout; do \
			id $$u >/dev/null 2>&1 || useradd --system --no-create-home \
			    --home-dir /nonexistent --shell /usr/sbin/nologin $$u; \
		done; \
	fi

run: deps accounts
	@$(MAKE) --no-print-directory all
	@PYTHONPATH=regress $(PYTHON) regress/lib/demo.py

regress: deps accounts
	@$(MAKE) --no-print-directory REGRESS=1 all
	@$(PYTHON) regress/run.py

bench: deps accounts
	@$(MAKE) --no-print-directory all
	@$(PYTHON) regress/bench/run.py

install: progs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXEC) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 0755 pymaild/pymaild admin/pymailadm $(DESTDIR)$(BINDIR)
	install -m 0755 $(HELPERS) $(DESTDIR)$(LIBEXEC)
	-install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5
	-install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8
	-install -m 0644 man/*.7 $(DESTDIR)$(MANDIR)/man7

clean:
	rm -f */*.o common/libcommon.a $(PROGS) $(UNIT_BIN) $(BENCH_BIN) $(FLAGSTAMP)
	rm -f $(AUTH_BIN)
	rm -rf $(FUZZ_BUILD) $(FUZZ_REPLAY)
	rm -rf regress/__pycache__ regress/*/__pycache__
	rm -rf build

# ---- Fuzzing --------------------------------------------------------
# The corpus replay (a normal, SANITIZE-able build, run by make regress):
# every harness compiled with -DFUZZ_REPLAY and called by replay.c over
# every file of its corpus folder.
FUZZ_TARGETS_H = $(FUZZ_BUILD)/targets.h
FUZZ_TARGETS_NOW = $(foreach n,$(FUZZ_NAMES),FUZZ_X($(n)))
$(shell mkdir -p $(FUZZ_BUILD)/replay $(FUZZ_BUILD)/obj && \
    [ "$$(cat $(FUZZ_TARGETS_H) 2>/dev/null)" = '$(FUZZ_TARGETS_NOW)' ] || \
    printf '%s' '$(FUZZ_TARGETS_NOW)' > $(FUZZ_TARGETS_H))

FUZZ_HDRS = regress/fuzz/fuzz.h $(wildcard common/*.h) \
	    $(wildcard $(addsuffix *.h,$(sort $(dir $(FUZZ_EXTRA)))))

$(FUZZ_BUILD)/replay/%.o: regress/fuzz/%.c $(FUZZ_HDRS) $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) -DFUZZ_REPLAY $(FUZZ_INC) $(CFLAGS) -c -o $@ $<

$(FUZZ_REPLAY): regress/fuzz/replay.c regress/fuzz/fuzz.h $(FUZZ_TARGETS_H) \
    $(patsubst %,$(FUZZ_BUILD)/replay/%.o,$(FUZZ_NAMES)) \
    $(FUZZ_EXTRA:.c=.o) common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) -I$(FUZZ_BUILD) \
	    -DFUZZ_CORPUS='"$(CURDIR)/regress/fuzz/corpus"' $(CFLAGS) \
	    $(LDFLAGS) -o $@ $< $(filter %.o,$^) common/libcommon.a $(LDLIBS)

# The fuzzers: clang, libFuzzer, ASan + UBSan, objects of their own.
FUZZ_CC     = clang
FUZZ_S     ?= 10
FUZZ_J     ?= 1
FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer $(WARN) \
	      -Wno-missing-field-initializers \
	      $(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_LIBSRC = $(COMMON_SRC) $(FUZZ_EXTRA)
FUZZ_LIBOBJ = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIBSRC))
FUZZ_BINS   = $(patsubst %,$(FUZZ_BUILD)/%,$(FUZZ_NAMES))

$(FUZZ_BUILD)/obj/%.o: %.c $(wildcard common/*.h) $$(wildcard $$(dir $$*)*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libfuzz.a: $(FUZZ_LIBOBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/%: regress/fuzz/%.c $(FUZZ_HDRS) $(FUZZ_BUILD)/libfuzz.a
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_INC) \
	    $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libfuzz.a \
	    $(LDLIBS)

# clang and its libFuzzer runtime, installed as deps does.
FUZZ_PROBE = int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }
fuzzdeps:
	@if echo '$(FUZZ_PROBE)' | $(FUZZ_CC) -fsanitize=fuzzer -x c - \
	    -o $(FUZZ_BUILD)/.probe >/dev/null 2>&1; then \
		rm -f $(FUZZ_BUILD)/.probe; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "fuzzdeps: installing clang libclang-rt-14-dev"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    clang libclang-rt-14-dev >/dev/null || exit 1; \
	else \
		echo "fuzzdeps: missing; run: sudo apt-get install clang" \
		    "libclang-rt-14-dev"; \
		exit 1; \
	fi

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_S seconds; crashes land in corpus/NAME/.
fuzz: deps fuzzdeps
	@$(MAKE) --no-print-directory fuzz-build
	@$(PYTHON) regress/fuzz/run.py -t $(FUZZ_S) -j $(FUZZ_J) $(FUZZ_NAMES)

# ---- Debian package -------------------------------------------------
# make deb: DEBBUILD/pymaild_VERSION_ARCH.deb, built by dpkg-buildpackage
# from debian/ in a copy of the tree (it writes beside the folder it
# builds and cleans that folder first: neither is for the checkout),
# then checked by lintian, which fails the build on an error.
DEBBUILD ?= $(CURDIR)/build/deb
DEBSRC	  = $(DEBBUILD)/pymaild-$(VERSION)
DEBARCH	  = $(shell dpkg --print-architecture)
# The tools; the build needs DEBS too (debian/control, Build-Depends).
DEBTOOLS  = debhelper dpkg-dev fakeroot lintian

debdeps:
	@missing=""; \
	for p in $(DEBS) $(DEBTOOLS); do \
		dpkg-query -W -f '$${db:Status-Status}' $$p 2>/dev/null | \
		    grep -qx installed || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "debdeps: installing$$missing"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    $$missing >/dev/null || exit 1; \
	else \
		echo "debdeps: missing; run: sudo apt-get install$$missing"; \
		exit 1; \
	fi

deb: debdeps
	@v=$$(dpkg-parsechangelog -l debian/changelog -S Version); \
	if [ "$$v" != "$(VERSION)" ]; then \
		echo "deb: debian/changelog is at $$v, the Makefile at" \
		    "$(VERSION): add an entry for $(VERSION) to the changelog" >&2; \
		exit 1; \
	fi
	rm -rf $(DEBBUILD)
	mkdir -p $(DEBSRC)
	tar -cf - --exclude-vcs --exclude=./build --exclude=./run \
	    --exclude=./$(FUZZ_BUILD) . | tar -xf - -C $(DEBSRC)
	# A package is never a sanitizer or test build, whatever the caller
	# exported (make regress SANITIZE=1 exports its variables).
	cd $(DEBSRC) && env -u SANITIZE -u REGRESS -u MAKEFLAGS \
	    dpkg-buildpackage -b -us -uc -Jauto
	lintian --fail-on error $(DEBBUILD)/pymaild_$(VERSION)_$(DEBARCH).deb
	@echo "deb: $(DEBBUILD)/pymaild_$(VERSION)_$(DEBARCH).deb"
