#!/usr/bin/env bash
# The installed library as a user gets it: `cmake --install` of this build into a temporary prefix
# puts the CLI, libxadapt.a, libxadapt.so (versioned SONAME), the headers under include/xadapt/
# with the umbrella <xadapt/xadapt.h>, xadapt.pc and the CMake package there; every installed
# header compiles on its own with only -I$prefix/include; the README's C example
# (docs/examples/madx_stack.c) builds with `pkg-config --cflags --libs xadapt` (shared) and
# `--static`, runs Stack(lang, task) on the committed tiny base and adapters, and matches the
# PyTorch reference of that case (tests/data/adapters/stack/golden.safetensors); a CMake project
# finds the package with find_package(xadapt).
# usage: test_install.sh PATH/TO/xadapt   (CTest passes it; the build directory is its directory)
set -u
xa=${1:?usage: test_install.sh XADAPT}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${XA_TEST_DATA:-$root/tests/data}
build=$(cd "$(dirname "$xa")" && pwd)
tmp=${XA_TEST_TMP:-/tmp}/install-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0
# shellcheck source=lib.sh
. "$here/lib.sh"
cc=${CC:-cc}
prefix=$tmp/prefix
# A sanitizer build (.ci/test --sanitize) installs an instrumented library: programs built
# against it need the same runtime, as a user of such a build would add.
san=()
if grep -q '^XA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  san=(-fsanitize=address,undefined)
fi

expect 0 "cmake --install into a temporary prefix" -- cmake --install "$build" --prefix "$prefix"
for f in bin/xadapt lib/libxadapt.a lib/pkgconfig/xadapt.pc include/xadapt/xadapt.h \
         include/xadapt/model/model.h include/xadapt/tokenizer/spm.h \
         lib/cmake/xadapt/xadaptConfig.cmake lib/cmake/xadapt/xadaptTargets.cmake; do
  if [[ -e "$prefix/$f" ]]; then echo "ok: installed $f"; else echo "FAIL: $f not installed"; fails=$((fails + 1)); fi
done
expect 0 "installed CLI runs" -- "$prefix/bin/xadapt" --help
if grep -rq '#include "' "$prefix/include/xadapt"; then
  echo "FAIL: an installed header still includes a short path:"; grep -rn '#include "' "$prefix/include/xadapt" | head -3
  fails=$((fails + 1))
else
  echo "ok: installed headers include each other as <xadapt/...>"
fi
[[ -e "$prefix/include/xadapt/io/jsonutil.h" ]] && { echo "FAIL: a module-private header is installed"; fails=$((fails + 1)); }

# every installed header on its own, strict C11 without feature macros
n=0
while IFS= read -r h; do
  rel=${h#"$prefix/include/"}
  printf '#include <%s>\nint main(void) { return 0; }\n' "$rel" >"$tmp/h.c"
  if ! $cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$prefix/include" \
       $(pkg-config --cflags jansson) "$tmp/h.c" 2>"$tmp/err"; then
    echo "FAIL: <$rel> does not compile on its own:"; head -5 "$tmp/err"; fails=$((fails + 1))
  fi
  n=$((n + 1))
done < <(find "$prefix/include/xadapt" -name '*.h' | sort)
echo "ok: $n installed headers compiled on their own"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
want_version=$(sed -n 's/^project(xadapt VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
expect 0 "pkg-config knows xadapt" -- pkg-config --modversion xadapt
contains "$out" "$want_version" "pkg-config version is the project's"
hv=$(printf '#include <xadapt/xadapt.h>\nXADAPT_VERSION_MAJOR.XADAPT_VERSION_MINOR.XADAPT_VERSION_PATCH\n' |
     $cc -E -P -I"$prefix/include" $(pkg-config --cflags jansson) - 2>/dev/null | tail -1 | tr -d ' ')
contains "$hv" "$want_version" "XADAPT_VERSION_* in xadapt.h match the project version"

stack=$data/adapters/stack
base=$data/encoder/xlmr
ex=$root/docs/examples/madx_stack.c
if expect 0 "the C example builds against the shared library with pkg-config" -- \
     $cc -std=c11 -Wall -Werror "${san[@]}" "$ex" $(pkg-config --cflags --libs xadapt) -o "$tmp/ex_shared"; then
  if ldd "$tmp/ex_shared" | grep -q "libxadapt.so.0 => $prefix/lib"; then echo "ok: linked to the installed libxadapt.so.0"
  elif LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/ex_shared" | grep -q "libxadapt.so.0 => $prefix/lib"; then echo "ok: needs libxadapt.so.0 (SONAME)"
  else echo "FAIL: the example does not need libxadapt.so.0"; ldd "$tmp/ex_shared"; fails=$((fails + 1)); fi
  LD_LIBRARY_PATH="$prefix/lib" expect 0 "the example matches the PyTorch reference (shared)" -- \
    "$tmp/ex_shared" "$base" "$stack/lang" "$stack/task" "$stack/golden.safetensors"
  contains "$out" "max |xadapt - reference|" "the example reports its difference"
  LD_LIBRARY_PATH="$prefix/lib" expect 0 "the example's toy sequence" -- "$tmp/ex_shared" "$base" "$stack/lang" "$stack/task"
  LD_LIBRARY_PATH="$prefix/lib" expect 1 "a missing adapter directory is an error" -- "$tmp/ex_shared" "$base" "$tmp/none" "$stack/task"
fi
if expect 0 "the C example links statically with pkg-config --static" -- \
     $cc -std=c11 -Wall -Werror "${san[@]}" "$ex" -o "$tmp/ex_static" -Wl,-Bstatic -L"$prefix/lib" -lxadapt -Wl,-Bdynamic \
       $(pkg-config --cflags xadapt) $(pkg-config --static --libs-only-other --libs-only-L xadapt) \
       $(pkg-config --static --libs xadapt | sed 's/-lxadapt//'); then
  expect 0 "the static example matches the PyTorch reference" -- \
    "$tmp/ex_static" "$base" "$stack/lang" "$stack/task" "$stack/golden.safetensors"
fi

# CMake package
mkdir -p "$tmp/cmproj"
cp "$ex" "$tmp/cmproj/"
cat >"$tmp/cmproj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(use_xadapt C CXX)
find_package(xadapt 0.1 REQUIRED)
add_executable(madx_stack madx_stack.c)
target_link_libraries(madx_stack PRIVATE xadapt::xadapt_shared)
CM
if expect 0 "find_package(xadapt) configures" -- cmake -S "$tmp/cmproj" -B "$tmp/cmproj/build" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_C_FLAGS="${san[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san[*]}"; then
  if expect 0 "a CMake project builds the example against xadapt::xadapt_shared" -- cmake --build "$tmp/cmproj/build"; then
    expect 0 "the CMake-built example matches the reference" -- \
      "$tmp/cmproj/build/madx_stack" "$base" "$stack/lang" "$stack/task" "$stack/golden.safetensors"
  fi
fi

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all install checks passed"
