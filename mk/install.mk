# make install [PREFIX=/usr/local] [DESTDIR=]: the host archive and shared
# object, the kernel archive under its own name, the header and two
# pkg-config files. make uninstall removes exactly those files.
#
#   $(PREFIX)/lib/libmemshim.a               host (Linux) archive
#   $(PREFIX)/lib/libmemshim.so              host shared object (LD_PRELOAD or -lmemshim)
#   $(PREFIX)/lib/libmemshim-kernel.a        x86_64-unknown-none archive (kernels, newlib)
#   $(PREFIX)/include/memshim.h
#   $(PREFIX)/lib/pkgconfig/memshim.pc        pkg-config --cflags --libs memshim
#   $(PREFIX)/lib/pkgconfig/memshim-kernel.pc pkg-config --cflags --libs memshim-kernel
#
#   make test-install   installs into a temporary prefix, builds C programs
#                       with pkg-config alone, uninstalls

PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install
MEMSHIM_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
INSTALLED := lib/libmemshim.a lib/libmemshim.so lib/libmemshim-kernel.a include/memshim.h \
	lib/pkgconfig/memshim.pc lib/pkgconfig/memshim-kernel.pc

.PHONY: install uninstall test-install
install: host-lib kernel-lib
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	$(INSTALL) -m 644 $(HOST_LIB) $(DESTDIR)$(PREFIX)/lib/libmemshim.a
	$(INSTALL) -m 755 $(HOST_SO) $(DESTDIR)$(PREFIX)/lib/libmemshim.so
	$(INSTALL) -m 644 $(KERNEL_LIB) $(DESTDIR)$(PREFIX)/lib/libmemshim-kernel.a
	$(INSTALL) -m 644 $(HEADER) $(DESTDIR)$(PREFIX)/include/memshim.h
	for pc in memshim memshim-kernel; do \
		sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(MEMSHIM_VERSION)|' pkgconfig/$$pc.pc.in \
			>$(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc && \
		chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc || exit 1; \
	done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))

test-install: host-lib kernel-lib
	@scripts/test-install.sh

TEST_STEPS += test-install
