#!/usr/bin/env bash
# Builds the engine (and the trainer, when present) with the device checks in tests/device/
# straight with g++ against a libtorch, without CMake and without the project's other
# dependencies: a GPU machine typically has PyTorch's libtorch and nothing else.
#
#   tests/device/build.sh OUT_DIR
#
# libtorch: $TORCH_DIR (a folder with include/ and lib/), else python3's torch package, else
# Debian's libtorch-dev. nlohmann/json headers: $BREAKFIX_DEVICE_DEPS/include (default
# .devdeps/include), else the system's. Binaries land in OUT_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: tests/device/build.sh OUT_DIR}
mkdir -p "$out/obj"

if [ -z "${TORCH_DIR:-}" ] && python3 -c 'import torch' 2>/dev/null; then
  TORCH_DIR=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
fi
if [ -n "${TORCH_DIR:-}" ]; then
  torch_inc=(-isystem "$TORCH_DIR/include" -isystem "$TORCH_DIR/include/torch/csrc/api/include")
  libdir="$TORCH_DIR/lib"
  abi=$(python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))' 2>/dev/null || echo 1)
else
  torch_inc=(-isystem /usr/include/torch/csrc/api/include)
  libdir=/usr/lib/x86_64-linux-gnu
  abi=1
fi
deps=${BREAKFIX_DEVICE_DEPS:-$root/.devdeps}
echo "libtorch: ${TORCH_DIR:-system} (lib $libdir, cxx11 abi $abi)"

cxx=("${CXX:-g++}" -std=c++20 -O2 -fPIC -D_GLIBCXX_USE_CXX11_ABI="$abi" '-DBREAKFIX_VERSION="device-check"'
     -I"$root/include" -I"$root/src" -isystem "$deps/include" "${torch_inc[@]}")

sources=()
dirs=("$root"/src/core "$root"/src/engine)
[ "${BREAKFIX_DEVICE_SKIP_TRAIN:-0}" = 1 ] || dirs+=("$root"/src/train)
for d in "${dirs[@]}"; do
  for f in "$d"/*.cc; do
    [ -e "$f" ] || continue
    case "$f" in *_test.cc | */plugin_entry.cc) continue ;; esac
    sources+=("$f")
  done
done
mains=("$root"/tests/device/*_check.cc)

# One compile command per source, run in parallel; objects are named folder_file.o.
compile_script="$out/compile.sh"
{
  echo 'set -e'
  printf 'src=$1; obj="%s/obj/$(basename "$(dirname "$src")")_$(basename "${src%%.cc}").o"\n' "$out"
  printf '%q ' "${cxx[@]}"
  echo '-c "$src" -o "$obj"'
} >"$compile_script"
printf '%s\n' "${sources[@]}" "${mains[@]}" | xargs -P "$(nproc)" -n 1 bash "$compile_script"

libs=(-L"$libdir" -Wl,-rpath,"$libdir" -Wl,--no-as-needed -ltorch -ltorch_cpu)
[ -e "$libdir/libtorch_cuda.so" ] && libs+=(-ltorch_cuda)
libs+=(-lc10)
[ -e "$libdir/libc10_cuda.so" ] && libs+=(-lc10_cuda)
libs+=(-Wl,--as-needed -lpthread -ldl)

objects=()
for f in "${sources[@]}"; do
  objects+=("$out/obj/$(basename "$(dirname "$f")")_$(basename "${f%.cc}").o")
done
for m in "${mains[@]}"; do
  name=$(basename "${m%.cc}")
  "${CXX:-g++}" -o "$out/$name" "${objects[@]}" "$out/obj/device_$name.o" "${libs[@]}"
  echo "built $out/$name"
done
