#!/bin/sh
# Installs the build into a temporary DESTDIR, then builds tests/external/hello.c
# the way a user would, with `pkg-config --cflags --libs wschat`, and runs it.
# Also checks that only wschat_* symbols are exported and that the SONAME is set.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DESTDIR="$tmp/root" meson install -C "$build" --no-rebuild --quiet >/dev/null
libdir=$(find "$tmp/root" -name 'libwschat.so' -printf '%h\n' | head -n 1)
pcdir=$(find "$tmp/root" -name 'wschat.pc' -printf '%h\n' | head -n 1)
test -n "$libdir" && test -n "$pcdir"
test -f "$libdir/libwschat.a"
test -n "$(find "$tmp/root" -name wschat.h)"
test -x "$(find "$tmp/root" -name chat-cli | head -n 1)"
flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root" pkg-config --cflags --libs wschat)
echo "pkg-config --cflags --libs wschat: $flags"
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/hello" "$src/tests/external/hello.c" $flags
LD_LIBRARY_PATH="$libdir" "$tmp/hello" "$tmp/hello-history.db"
test -s "$tmp/hello-history.db" # the installed library made the SQLite file
# Static linking: --static must name every library libwschat.a needs (the
# history store's SQLite and the JSON protocol's jansson among them); the
# same program, linked against the archive, must link and run.
static=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root" pkg-config --libs --static wschat)
echo "pkg-config --libs --static wschat: $static"
for lib in -lsqlite3 -ljansson -luv; do
  case " $static " in *" $lib "*) ;; *) echo "missing from --static: $lib"; exit 1 ;; esac
done
cflags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root" pkg-config --cflags wschat)
others=$(echo " $static " | sed 's/ -lwschat / /')
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/hello-static" "$src/tests/external/hello.c" \
  $cflags "$libdir/libwschat.a" $others
"$tmp/hello-static" "$tmp/hello-static-history.db"
# The README's embedding example must compile as shown.
awk '/^```c$/ {on=1; next} /^```$/ {if (on) exit} on' "$src/README.md" >"$tmp/readme.c"
test -s "$tmp/readme.c"
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/readme" "$tmp/readme.c" $flags
# The SONAME carries the minor version while the major is 0 (0.x releases
# may break the ABI), then the major alone. Read the version from the header.
ver() { sed -n "s/^#define WSCHAT_VERSION_$1 \([0-9]*\)$/\1/p" "$src/include/wschat.h"; }
if [ "$(ver MAJOR)" = 0 ]; then want="libwschat.so.0.$(ver MINOR)"; else want="libwschat.so.$(ver MAJOR)"; fi
soname=$(objdump -p "$libdir/libwschat.so" | awk '/SONAME/ {print $2}')
echo "SONAME: $soname (expected $want)"
test "$soname" = "$want"
test -e "$libdir/$soname" # the link the loader looks for is installed
bad=$(nm -D --defined-only "$libdir/libwschat.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^wschat_' || true)
if [ -n "$bad" ]; then echo "exported symbols outside wschat_*: $bad"; exit 1; fi
echo "ok"
