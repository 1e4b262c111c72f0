#!/bin/sh
# Builds bin/sitegm_VERSION_amd64.deb with Debian's own dpkg-deb (no
# debhelper: the package is a few static binaries and text files, and
# every file and script it holds is listed here, in one place).
#
# Reproducible: the binaries are built with -trimpath, no VCS stamp and a
# build date taken from SOURCE_DATE_EPOCH (default: the last commit's
# time), every file's mtime is clamped to it, owners are root, and
# dpkg-deb writes the archive members with that time. The same tree gives
# the same bytes.
#
#   packaging/deb/build.sh [OUTDIR]          VERSION=... overrides the version
set -eu

OUT=${1:-bin}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 1798761600)
fi
export SOURCE_DATE_EPOCH
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
if [ -z "${VERSION:-}" ]; then
	# A native version that sorts by build time: 0~gitYYYYMMDD.HHMMSS.SHA.
	REV=$(git rev-parse --short=8 HEAD 2>/dev/null || echo local)
	VERSION=0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d.%H%M%S).$REV
fi

STAGE=$OUT/deb/sitegm
rm -rf "$OUT/deb"
mkdir -p "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/sitegm" \
	"$STAGE/usr/lib/sysusers.d" "$STAGE/usr/lib/tmpfiles.d" "$STAGE/lib/udev/rules.d" \
	"$STAGE/usr/share/doc/sitegm/examples" "$STAGE/usr/share/man/man1" "$STAGE/usr/share/man/man5" \
	"$STAGE/usr/share/man/man8" "$STAGE/usr/share/lintian/overrides"

CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X sitegm/internal/version.BuildDate=$DATE" \
	-o "$STAGE/usr/bin/" ./cmd/sitegm ./cmd/gnss-sim ./cmd/ptpv1-probe

# The unit, with the package's paths.
sed 's#/usr/local/bin/#/usr/bin/#g; s#^Documentation=.*#Documentation=man:sitegm(8) man:sitegm.toml(5)#' configs/sitegm.service \
	> "$STAGE/lib/systemd/system/sitegm.service"
install -m 0644 configs/sitegm.toml "$STAGE/etc/sitegm/sitegm.toml"
install -m 0644 "$HERE/sitegm.sysusers" "$STAGE/usr/lib/sysusers.d/sitegm.conf"
install -m 0644 "$HERE/sitegm.tmpfiles" "$STAGE/usr/lib/tmpfiles.d/sitegm.conf"
install -m 0644 "$HERE/60-sitegm.rules" "$STAGE/lib/udev/rules.d/60-sitegm.rules"

DOC=$STAGE/usr/share/doc/sitegm
install -m 0644 README.md docs/*.md docs/*.png "$DOC/"
install -m 0644 configs/sitegm.toml configs/demo.toml configs/sitegm-alerts.yml "$DOC/examples/"
gzip -9n "$DOC"/*.md
install -m 0644 "$HERE/copyright" "$DOC/copyright"
{
	printf 'sitegm (%s) unstable; urgency=medium\n\n' "$VERSION"
	printf '  * Built from the sitegm source tree, commit %s.\n\n' "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
	printf ' -- sitegm developers <sitegm@example.org>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} > "$DOC/changelog"
gzip -9n "$DOC/changelog"

for m in "$ROOT"/packaging/man/*.[158]; do
	sec=${m##*.}
	install -m 0644 "$m" "$STAGE/usr/share/man/man$sec/"
	gzip -9n "$STAGE/usr/share/man/man$sec/$(basename "$m")"
done

install -m 0644 "$HERE/lintian-overrides" "$STAGE/usr/share/lintian/overrides/sitegm"
install -m 0755 "$HERE/postinst" "$HERE/prerm" "$HERE/postrm" "$STAGE/DEBIAN/"
install -m 0644 "$HERE/conffiles" "$STAGE/DEBIAN/"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed "s/@VERSION@/$VERSION/; s/@SIZE@/$SIZE/" "$HERE/control.in" > "$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | LC_ALL=C sort | xargs md5sum) \
	> "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control"

find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
DEB=$OUT/sitegm_${VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
