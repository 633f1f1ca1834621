#!/usr/bin/env bash
# Re-create the vendored logo archives under data/vendor/ from the npm package registry.
#
# Users never need this (the archives are committed); maintainers run it to move to newer
# releases. It needs node/npm. The archives are byte-reproducible: sorted names, fixed mtime,
# owner and gzip header, so the sha256 in data/vendor/manifest.json only changes with content.
#
#   scripts/vendor-logos.sh [simple-icons-version] [fontawesome-version]
set -euo pipefail
SI_VERSION=${1:-16.37.0}
FA_VERSION=${2:-7.3.1}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/data/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "simple-icons@$SI_VERSION" "@fortawesome/fontawesome-free@$FA_VERSION" >/dev/null
mkdir -p si fa stage/simple-icons stage/fontawesome-free
tar xzf "simple-icons-$SI_VERSION.tgz" -C si
tar xzf "fortawesome-fontawesome-free-$FA_VERSION.tgz" -C fa

cp -r si/package/icons stage/simple-icons/icons
cp si/package/data/simple-icons.json si/package/LICENSE.md si/package/DISCLAIMER.md stage/simple-icons/
mkdir -p stage/fontawesome-free/svgs
cp -r fa/package/svgs/brands stage/fontawesome-free/svgs/brands
cp fa/package/LICENSE.txt stage/fontawesome-free/

pack() { # pack <folder> <archive>
  tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner -C stage -cf - "$1" | gzip -9n >"$2"
}
mkdir -p "$out/licenses"
pack simple-icons "$out/simple-icons-$SI_VERSION.tar.gz"
pack fontawesome-free "$out/fontawesome-free-$FA_VERSION.tar.gz"
cp stage/simple-icons/LICENSE.md "$out/licenses/simple-icons-LICENSE.md"
cp stage/simple-icons/DISCLAIMER.md "$out/licenses/simple-icons-DISCLAIMER.md"
cp stage/fontawesome-free/LICENSE.txt "$out/licenses/fontawesome-free-LICENSE.txt"

si_count=$(ls stage/simple-icons/icons/*.svg | wc -l)
fa_count=$(ls stage/fontawesome-free/svgs/brands/*.svg | wc -l)
si_sha=$(sha256sum "$out/simple-icons-$SI_VERSION.tar.gz" | cut -d' ' -f1)
fa_sha=$(sha256sum "$out/fontawesome-free-$FA_VERSION.tar.gz" | cut -d' ' -f1)
si_npm=$(npm view "simple-icons@$SI_VERSION" dist.integrity)
fa_npm=$(npm view "@fortawesome/fontawesome-free@$FA_VERSION" dist.integrity)

cat >"$out/manifest.json" <<JSON
{
  "sources": [
    {
      "id": "simple-icons",
      "package": "simple-icons",
      "version": "$SI_VERSION",
      "license": "CC0-1.0",
      "license_files": ["licenses/simple-icons-LICENSE.md", "licenses/simple-icons-DISCLAIMER.md"],
      "notice": "Icons are CC0, but the brands they show are trademarks of their owners: see the disclaimer before using a logo outside this course.",
      "homepage": "https://simpleicons.org",
      "archive": "simple-icons-$SI_VERSION.tar.gz",
      "sha256": "$si_sha",
      "npm_integrity": "$si_npm",
      "svg_dir": "simple-icons/icons",
      "colours": "simple-icons/simple-icons.json",
      "file_count": $si_count
    },
    {
      "id": "fontawesome-brands",
      "package": "@fortawesome/fontawesome-free",
      "version": "$FA_VERSION",
      "license": "CC-BY-4.0",
      "license_files": ["licenses/fontawesome-free-LICENSE.txt"],
      "notice": "Font Awesome Free brand icons by Fonticons, Inc., CC BY 4.0: credit Font Awesome (https://fontawesome.com) when you share them or images made from them.",
      "homepage": "https://fontawesome.com",
      "archive": "fontawesome-free-$FA_VERSION.tar.gz",
      "sha256": "$fa_sha",
      "npm_integrity": "$fa_npm",
      "svg_dir": "fontawesome-free/svgs/brands",
      "colours": null,
      "file_count": $fa_count
    }
  ]
}
JSON
echo "wrote $out: simple-icons $SI_VERSION ($si_count SVGs), fontawesome-free $FA_VERSION ($fa_count SVGs)"
