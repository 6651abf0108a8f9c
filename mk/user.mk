# Shared settings for user-space C: warnings as errors, libbpf from pkg-config.
CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE
LIBBPF_CFLAGS := $(shell pkg-config --cflags libbpf 2>/dev/null)
LIBBPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
# the engine reads DNS TTLs of host names (res_query, ns_parserr: glibc's libresolv)
ENGINE_LIBS := -lresolv
