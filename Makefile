# pymaild — GNU make.
#
#   make            build everything
#   make run        install missing deps, build, start the demo in run/
#   make regress    install missing deps, build, run every test
#   make regress SANITIZE=1   the same with ASan + UBSan
#   make bench      benchmarks (figures, not pass/fail)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/sbin
LIBEXEC	 = $(PREFIX)/libexec/pymaild
MANDIR	 = $(PREFIX)/share/man
SYSCONF	?= /etc

PKGS	 = libbsd-overlay ldns libconfig libevent libxcrypt libseccomp
# Debian package for each pkg-config name, in the same order.
DEBS	 = libbsd-dev libldns-dev libconfig-dev libevent-dev libcrypt-dev \
	   libseccomp-dev pkg-config
# What the tests drive besides our own code.
TESTDEBS = ldnsutils iproute2 util-linux mpop

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
	    "-D__unused=__attribute__((__unused__))" \
	    -D_GNU_SOURCE
CFLAGS	 += -std=gnu11 -O2 -g $(WARN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS	 += $(SANFLAGS)
LDLIBS	 += -lmd $(PKG_LIBS) -lpthread

PROGS	 = pymaild/pymaild admin/pymailadm smtpd/smtpd pop3d/pop3d \
	   queued/queued mxcache/mxcache
HELPERS	 = smtpd/smtpd pop3d/pop3d queued/queued mxcache/mxcache

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:.c=.o)
UNIT_SRC   = $(wildcard regress/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:.c=)
BENCH_SRC  = $(wildcard regress/bench/*.c)
BENCH_BIN  = $(BENCH_SRC:.c=)

# Rebuild everything when the flags change (plain vs SANITIZE=1).
FLAGSTAMP = .build-flags
FLAGS_NOW = $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(LDLIBS)
$(shell [ "$$(cat $(FLAGSTAMP) 2>/dev/null)" = '$(FLAGS_NOW)' ] || \
    printf '%s' '$(FLAGS_NOW)' > $(FLAGSTAMP))

.PHONY: all deps accounts run regress bench install clean fuzz
.DEFAULT_GOAL := all

all: $(PROGS) $(UNIT_BIN) $(BENCH_BIN)

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

regress/unit/test_%: regress/unit/test_%.c regress/unit/unit.h common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< common/libcommon.a $(LDLIBS)

regress/bench/%: regress/bench/%.c common/libcommon.a $(FLAGSTAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< common/libcommon.a $(LDLIBS)

# Check the libraries; as root install what is missing, else say how.
deps:
	@missing=""; \
	for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || missing=1; done; \
	command -v pkg-config >/dev/null || missing=1; \
	for b in ldns-testns unshare ip mpop; do command -v $$b >/dev/null || missing=1; done; \
	[ -x $(PYTHON) ] || missing=1; \
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
		for u in _pymaild _pymailq; do \
			id $$u >/dev/null 2>&1 || useradd --system --no-create-home \
			    --home-dir /nonexistent --shell /usr/sbin/nologin $$u; \
		done; \
	fi

run: deps accounts
	@$(MAKE) --no-print-directory all
	@$(PYTHON) regress/lib/demo.py

regress: deps accounts
	@$(MAKE) --no-print-directory REGRESS=1 all
	@$(PYTHON) regress/run.py

bench: deps accounts
	@$(MAKE) --no-print-directory all
	@$(PYTHON) regress/bench/run.py

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXEC) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 pymaild/pymaild admin/pymailadm $(DESTDIR)$(BINDIR)
	install -m 0755 $(HELPERS) $(DESTDIR)$(LIBEXEC)
	-install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5
	-install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8

clean:
	rm -f */*.o common/libcommon.a $(PROGS) $(UNIT_BIN) $(BENCH_BIN) $(FLAGSTAMP)
	rm -rf regress/__pycache__ regress/*/__pycache__
