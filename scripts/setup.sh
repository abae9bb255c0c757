#!/usr/bin/env bash
# Set up explorer in ./.venv. With --test, also the system services the test suite uses for real:
# a PostgreSQL server, an OpenSSH server (remote-device tests on 127.0.0.1) and Chromium with
# its driver (dashboard tests in a headless browser). --reference (implied by --test) also creates
# ./.venv-reference, the separate environment that exports the published reference networks of
# timm to ONNX (torch 2.14.1 + torchvision 0.29.1, which timm imports; the main venv keeps its
# light CPU torch): `explorer space build-reference` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
with_reference=0
[[ "${1:-}" == "--test" ]] && with_tests=1 && with_reference=1
[[ "${1:-}" == "--reference" ]] && with_reference=1

if (( with_tests )); then
    packages=(postgresql openssh-server chromium chromium-driver)
    missing=()
    for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if (( ${#missing[@]} )); then
        if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build (2.13.0); install it first so nothing pulls another build.
.venv/bin/python -m pip install -q "torch==2.13.0"
if (( with_tests )); then
    .venv/bin/python -m pip install -q -e ".[test]"
else
    .venv/bin/python -m pip install -q -e .
fi
if (( with_reference )); then
    python3 -m venv .venv-reference
    .venv-reference/bin/python -m pip install -q --upgrade pip
    .venv-reference/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
        "timm==1.0.31" "onnx>=1.16" "fvcore==0.1.5.post20221221"
fi
