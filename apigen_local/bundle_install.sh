#!/usr/bin/env bash
# Install apigen-local from this bundle with no network: ./install.sh [--prefix DIR]
# Checks every file against MANIFEST.json first, then: Debian packages if Docker is missing
# (bundles made with --with-debs), a venv with the wheels (pip --no-index), the sandbox image
# from the saved base image, the models (linked into the user's cache too) and examples.
# A second run changes nothing.
set -euo pipefail
BUNDLE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${APIGEN_PREFIX:-$HOME/apigen-local}
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    -h|--help) echo "usage: $0 [--prefix DIR]"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (usage: $0 [--prefix DIR])" >&2; exit 2 ;;
  esac
done
command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found: install Python 3 first" >&2; exit 1; }

# 1. every file is checked before anything changes
"$PYTHON" - "$BUNDLE" <<'EOF'
import hashlib, json, platform, sys
from pathlib import Path
bundle = Path(sys.argv[1])
def fail(message):
    print(f"install.sh: {message}", file=sys.stderr)
    sys.exit(1)
try:
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
except (OSError, ValueError) as exc:
    fail(f"MANIFEST.json is missing or unreadable: {exc}")
for entry in manifest["files"]:
    path = bundle / entry["path"]
    if not path.is_file():
        fail(f"{entry['path']} is missing from the bundle")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if path.stat().st_size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        fail(f"{entry['path']} is damaged (checksum does not match MANIFEST.json)")
python = f"{sys.version_info[0]}.{sys.version_info[1]}"
if python != manifest["python"] or platform.machine() != manifest["machine"]:
    fail(f"this bundle is for Python {manifest['python']} on {manifest['machine']}, "
         f"this machine has Python {python} on {platform.machine()}")
EOF

# 2. Docker from the bundle's Debian packages, only where it is missing
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  if compgen -G "$BUNDLE/debs/*.deb" >/dev/null; then
    echo "== installing the bundle's Debian packages (Docker, debootstrap)"
    dpkg -i --skip-same-version "$BUNDLE"/debs/*.deb >/dev/null
  elif ! command -v dockerd >/dev/null; then
    echo "install.sh: Docker is not installed here and this bundle has no debs/ (make it with --with-debs)" >&2
    exit 1
  fi
fi

# 3. the venv, from the wheels only
VENV="$PREFIX/venv"
STAMP="$VENV/.apigen-bundle"
WANT=$(sha256sum "$BUNDLE/MANIFEST.json" | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "== venv $VENV: up to date"
else
  echo "== venv $VENV: installing from the bundle's wheels"
  mkdir -p "$PREFIX"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --no-index --disable-pip-version-check \
    --find-links "$BUNDLE/wheels" apigen-local
  echo "$WANT" > "$STAMP"
fi

# 4. the sandbox image, built offline on the saved base (a no-op when it is there)
echo "== sandbox image"
"$VENV/bin/apigen-local" sandbox build --from-tar "$BUNDLE/image/sandbox-base.tar"

# 5. models and examples, copied only where they differ
for folder in models examples; do
  mkdir -p "$PREFIX/$folder"
  for file in "$BUNDLE/$folder"/*; do
    target="$PREFIX/$folder/$(basename "$file")"
    cmp -s "$file" "$target" || cp "$file" "$target"
  done
done

# 6. the models also in the user's cache ($APIGEN_HOME/models, else ~/.cache/apigen-local/models),
#    where apigen-local finds them from any folder: hard links (copies across file systems)
CACHE=$("$VENV/bin/python" -c 'from apigen_local.model.files import user_models_dir; print(user_models_dir())')
mkdir -p "$CACHE"
for file in "$PREFIX/models"/*; do
  target="$CACHE/$(basename "$file")"
  cmp -s "$file" "$target" || ln -f "$file" "$target" 2>/dev/null || cp "$file" "$target"
done
echo "== models in $PREFIX/models and in $CACHE, where apigen-local finds them from any folder"
echo "== installed in $PREFIX; run the demo with:"
echo "cd '$PREFIX' && venv/bin/apigen-local generate --library examples/library.py --seed-file examples/seed.jsonl --rows 30 --out out/demo"
