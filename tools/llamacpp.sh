#!/usr/bin/env bash
# tools/llamacpp.sh VENV locked|latest
#   Builds llama-cpp-python from its source package for a portable CPU target and installs it into VENV.
# llama-cpp-python ships no CPU wheels on PyPI; its default build (GGML_NATIVE=ON) compiles for every
# feature the build machine advertises, AMX included, and dies with "Illegal instruction" where the
# process may not use it. So the target is named here from the CPU's flags (avx2, with FMA and F16C; or
# none of them; an AVX-512 build measured no faster for the embedded model), and the wheel is cached per
# version and target: a build is only reused on a CPU that has every feature of its target. The build
# takes 5-7 minutes on 2 cores, once.
# ggml runs on its own threads, not OpenMP (GGML_OPENMP=OFF): torch's bundled libgomp has the same soname,
# so both would share one OpenMP runtime, which keeps a thread team per calling thread and, once those teams
# outnumber the cores, stops spinning at barriers; llama.cpp meets one at every operation of every token.
# RAG answers asked each from a new thread were ~1.9x slower for it (bench/answer.py;
# the app's workers measured the same either way).
set -euo pipefail
venv=$1 mode=${2:-locked}
root="$(cd "$(dirname "$0")/.." && pwd)"
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
cache=${ASSISTANT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/assistant/wheels}

flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true) "
has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
common="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
common+=" -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF"
build=ggml-threads  # names what `common` chose beyond the target, in the cache key and the venv's stamp
if [ "$(uname -m)" != x86_64 ]; then
  target=generic-$(uname -m) cmake=""
elif has avx2 fma f16c bmi2; then
  target=avx2 cmake="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
else
  # ggml turns on every feature it is not told about: name each one off (SSE4.2 and BMI2 included)
  target=baseline cmake="-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
  cmake+=" -DGGML_SSE42=OFF -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF"
fi

if [ "$mode" = locked ]; then
  version=$(sed -n 's/^llama-cpp-python==//p' "$root/constraints.txt")
  spec="llama-cpp-python==$version"
else
  version=latest spec="llama-cpp-python"
fi
installed=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))" 2>/dev/null || true)
stamp="$venv/.llama-cpp-target"
if [ "$mode" = locked ] && [ "$installed" = "$version" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$target $build" ]; then
  exit 0  # this venv already has this version built for this CPU's target
fi
dir="$cache/llama-cpp-python-$version-$target-$build"
if [ "$mode" != locked ] || ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version for the $target CPU target (once, 5-7 minutes on 2 cores) ..." >&2
  tmp="$dir.tmp-$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  CMAKE_ARGS="$common $cmake" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "${pip[@]}" wheel --no-deps --no-binary llama-cpp-python --no-cache-dir -w "$tmp" "$spec"
  rm -rf "$dir" && mv "$tmp" "$dir"
fi
lock=()
[ "$mode" = locked ] && lock=(-c "$root/constraints.txt")
"${pip[@]}" install "${lock[@]}" --force-reinstall --no-deps "$dir"/llama_cpp_python-*.whl
# its own dependencies, from the lock like everything else
"${pip[@]}" install "${lock[@]}" diskcache jinja2 numpy typing-extensions
echo "$target $build" > "$stamp"
