# Sourced by the live-PEFT scripts (check-peft-layers.sh, check-peft-model.sh): sets `exporter` and
# `venv`, a venv layered on the exporter's (a .pth file names its site-packages, so installing the
# package leaves the exporter's venv as it is; everything goes in with --no-deps), with the package
# built into it. Needs `root` (the repository) and `script` (the caller's name, for messages).
exporter="${QORACLE_EXPORT_VENV:-$root/fixtures/export/.venv}"
if [[ ! -x "$exporter/bin/python" ]]; then
  echo "$script: no exporter venv at $exporter (run fixtures/export/export.sh first)" >&2
  exit 2
fi
venv=build-python/peft-venv
[[ -x "$venv/bin/python" ]] || "$exporter/bin/python" -m venv "$venv"
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
"$exporter/bin/python" -c "$purelib" > "$("$venv/bin/python" -c "$purelib")/exporter-venv.pth"
requires=$("$venv/bin/python" -c 'import tomllib; print(" ".join(tomllib.load(open("python/pyproject.toml", "rb"))["build-system"]["requires"]))')
# shellcheck disable=SC2086
"$venv/bin/pip" install -q --no-deps $requires pathspec==0.12.1
"$venv/bin/pip" install -q --no-deps --no-build-isolation ./python --config-settings=build-dir="$root/build-python/cmake-peft"
