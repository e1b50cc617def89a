#!/usr/bin/env bash
# Build a signed apt repository that plays packages.microsoft.com for the tests:
#
#   scripts/ms-odbc-repo.sh OUTDIR GNUPGHOME
#
# OUTDIR gets Microsoft's layout, so a Dockerfile written for the real repository works
# unchanged once its two URLs point here:
#   OUTDIR/keys/microsoft.asc                                  the signing key (armored)
#   OUTDIR/debian/12/prod/dists/bookworm/{InRelease,Release,Release.gpg}
#   OUTDIR/debian/12/prod/dists/bookworm/main/binary-amd64/Packages{,.gz}
#   OUTDIR/debian/12/prod/pool/main/m/msodbcsql18/msodbcsql18_<version>_amd64.deb
#   OUTDIR/variants/libssl102/debian/12/prod/...                a broken build (below)
# GNUPGHOME keeps the signing key (made once, no passphrase; reused on rebuilds).
#
# The msodbcsql18 package carries Microsoft's real driver binary, taken from the PyPI wheel
# mssql-python-odbc (Microsoft's own "ODBC Driver 18 for SQL Server binaries" package), at
# the paths Microsoft's .deb uses. packages.microsoft.com is unreachable here; PyPI is not.
#
# Test infrastructure only: nothing in the product reads this.
set -euo pipefail

(( $# == 2 )) || { echo "usage: $0 OUTDIR GNUPGHOME" >&2; exit 2; }
OUT="$1"
export GNUPGHOME="$2"

# Pinned: the wheel and its hash (pip --require-hashes refuses anything else).
WHEEL_VERSION="18.6.2.2"
WHEEL_SHA256="f5ed985f6d9854345e3e65dbc38e0b574ff13d8e04e6a58492d37bb19e714553"
DEB_VERSION="${WHEEL_VERSION}-1"
DRIVER_NAME="ODBC Driver 18 for SQL Server"
# The file names inside the wheel are the ones Microsoft's package installs (18.6 -> .so.2.1).
SO_NAME="libmsodbcsql-18.6.so.2.1"
PREFIX="opt/microsoft/msodbcsql18"
WHEEL_LIB="mssql_python_odbc/libs/linux/debian_ubuntu/x86_64"

# Depends: what Microsoft's msodbcsql18 declares. The exact control file of 18.6.2.1 could
# not be read here (packages.microsoft.com is unreachable); this list is assembled from
# Microsoft's own statements and reports of its package, each cited:
# - "direct dependencies ... libc6 (>= 2.21), libstdc++6 (>= 4.9), libkrb5-3, libcurl3,
#   openssl, debconf (>= 0.5), unixodbc (>= 2.3.1-1)": Microsoft's install guide, "Offline
#   installation" (MicrosoftDocs/sql-docs, installing-the-microsoft-odbc-driver-for-sql-server.md).
# - no libcurl and no libgssapi-krb5-2 in today's package: the same guide's Debian 12 steps
#   end with "optional: kerberos library for debian-slim distributions: apt-get install -y
#   libgssapi-krb5-2" (sql-docs PR #3899). On Debian 12 libcurl4 depends on
#   libgssapi-krb5-2 (apt-cache show libcurl4), so a package depending on libcurl would
#   make that step pointless. The driver dlopens libcurl.so.4 instead (notes/odbc-and-sql.md).
# - odbcinst: the postinst runs `odbcinst`; without it the install fails with status 127
#   (MicrosoftDocs/sql-docs#7634). Debian 12's unixodbc no longer depends on odbcinst
#   (apt-cache show unixodbc), and apt resolves odbcinst when installing msodbcsql18 on
#   Debian 12 (MicrosoftDocs/sql-docs#9409), so the package names it.
DEPENDS="libc6 (>= 2.21), libstdc++6 (>= 4.9), libkrb5-3, openssl, debconf (>= 0.5), unixodbc (>= 2.3.1), odbcinst"

PYTHON="$(command -v /usr/bin/python3 || command -v python3)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { printf '[ms-odbc-repo] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- the driver binary
printf 'mssql-python-odbc==%s --hash=sha256:%s\n' "$WHEEL_VERSION" "$WHEEL_SHA256" >"$work/req.txt"
log "pip download mssql-python-odbc==$WHEEL_VERSION"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  --platform manylinux_2_28_x86_64 -r "$work/req.txt" -d "$work/wheel" >&2
"$PYTHON" -m zipfile -e "$work"/wheel/*.whl "$work/x"

# ---------------------------------------------------------------- the .deb
# build_deb ROOT EXTRA_LIB: msodbcsql18 with the driver at Microsoft's paths.
build_deb() {
  local root="$1" driver="$2" pkg="$work/pkg"
  rm -rf "$pkg"
  mkdir -p "$pkg/DEBIAN" "$pkg/$PREFIX/lib64" "$pkg/$PREFIX/share/resources/en_US" "$pkg/$PREFIX/etc" \
    "$pkg/usr/share/doc/msodbcsql18"
  install -m 0755 "$driver" "$pkg/$PREFIX/lib64/$SO_NAME"
  install -m 0644 "$work/x/$WHEEL_LIB/share/resources/en_US/msodbcsqlr18.rll" \
    "$pkg/$PREFIX/share/resources/en_US/msodbcsqlr18.rll"
  install -m 0644 "$work/x/$WHEEL_LIB/lib/MICROSOFT_ODBC_DRIVER_FOR_SQL_SERVER_LICENSE.txt" \
    "$pkg/usr/share/doc/msodbcsql18/LICENSE.txt"
  # The driver template the postinst registers (the real package ships it at this path).
  cat >"$pkg/$PREFIX/etc/odbcinst.ini" <<EOF
[$DRIVER_NAME]
Description=Microsoft $DRIVER_NAME
Driver=/$PREFIX/lib64/$SO_NAME
UsageCount=1
EOF
  cat >"$pkg/DEBIAN/control" <<EOF
Package: msodbcsql18
Version: $DEB_VERSION
Architecture: amd64
Maintainer: mlflow-aca tests <tests@mlflow-aca.invalid>
Installed-Size: $(du -sk "$pkg" | cut -f1)
Depends: $DEPENDS
Section: database
Priority: extra
Description: ODBC Driver for Microsoft(R) SQL Server(R)
 Test stand-in: Microsoft's driver binary from the mssql-python-odbc wheel, packaged at the
 paths of Microsoft's msodbcsql18 package.
EOF
  # EULA: Microsoft's preinst aborts unless ACCEPT_EULA=Y ("ERROR: The EULA was not accepted.
  # Installation aborted.", quoted in actions/runner-images#2904). The debconf question
  # msodbcsql/ACCEPT_EULA the real package also accepts is not reproduced.
  cat >"$pkg/DEBIAN/preinst" <<'EOF'
#!/bin/sh
set -e
case "${ACCEPT_EULA:-}" in
  y|Y|yes|YES|Yes) ;;
  *) echo "ERROR: The EULA was not accepted. Installation aborted." >&2; exit 1 ;;
esac
EOF
  # Registration as Microsoft's maintainer scripts do it (reproduced in Gentoo's
  # dev-db/msodbcsql ebuild: odbcinst -i -d -f <template> / odbcinst -u -d -n <name>).
  cat >"$pkg/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
  odbcinst -i -d -f /$PREFIX/etc/odbcinst.ini >/dev/null
fi
EOF
  cat >"$pkg/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
odbcinst -u -d -n "$DRIVER_NAME" >/dev/null || true
EOF
  chmod 0755 "$pkg/DEBIAN/preinst" "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm"
  local pool="$root/pool/main/m/msodbcsql18"
  mkdir -p "$pool"
  dpkg-deb --root-owner-group --build "$pkg" "$pool/msodbcsql18_${DEB_VERSION}_amd64.deb" >/dev/null
}

# ---------------------------------------------------------------- signing key (once)
ensure_key() {
  mkdir -p "$GNUPGHOME"
  chmod 700 "$GNUPGHOME"
  if ! gpg --batch --list-secret-keys mlflow-aca-test-repo >/dev/null 2>&1; then
    log "generating the repository signing key in $GNUPGHOME"
    gpg --batch --pinentry-mode loopback --passphrase '' \
      --quick-gen-key "mlflow-aca test repository <mlflow-aca-test-repo@invalid>" rsa3072 sign never 2>/dev/null
  fi
}

# ---------------------------------------------------------------- indexes
# sign_repo ROOT: Packages, Release (with hashes), InRelease (clearsigned), Release.gpg.
sign_repo() {
  local root="$1" dist="$1/dists/bookworm" f
  mkdir -p "$dist/main/binary-amd64"
  (cd "$root" && dpkg-scanpackages --arch amd64 pool /dev/null 2>/dev/null) >"$dist/main/binary-amd64/Packages"
  gzip -9nkf "$dist/main/binary-amd64/Packages"
  {
    echo "Origin: mlflow-aca-test"
    echo "Label: packages.microsoft.com stand-in"
    echo "Suite: bookworm"
    echo "Codename: bookworm"
    echo "Date: $(LC_ALL=C date -Ru)"
    echo "Architectures: amd64"
    echo "Components: main"
    for sum in MD5Sum:md5sum SHA256:sha256sum; do
      echo "${sum%%:*}:"
      for f in main/binary-amd64/Packages main/binary-amd64/Packages.gz; do
        printf ' %s %s %s\n' "$(${sum##*:} "$dist/$f" | cut -d' ' -f1)" "$(stat -c %s "$dist/$f")" "$f"
      done
    done
  } >"$dist/Release"
  gpg --batch --yes --pinentry-mode loopback --passphrase '' -u mlflow-aca-test-repo \
    --clearsign -o "$dist/InRelease" "$dist/Release"
  gpg --batch --yes --pinentry-mode loopback --passphrase '' -u mlflow-aca-test-repo \
    -abs -o "$dist/Release.gpg" "$dist/Release"
}

ensure_key
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/keys"
gpg --batch --armor --export mlflow-aca-test-repo >"$OUT.tmp/keys/microsoft.asc"

driver="$work/x/$WHEEL_LIB/lib/$SO_NAME"
build_deb "$OUT.tmp/debian/12/prod" "$driver"
sign_repo "$OUT.tmp/debian/12/prod"

# A build of the same package that cannot load: the driver also needs libssl.so.1.0.2, as
# Microsoft's 17.3 build did on systems with only OpenSSL 1.1 ("Can't open lib ... file not
# found"; microsoft/homebrew-mssql-release#32). For the image self-check's failing case.
cp "$driver" "$work/broken.so"
patchelf --add-needed libssl.so.1.0.2 "$work/broken.so"
build_deb "$OUT.tmp/variants/libssl102/debian/12/prod" "$work/broken.so"
sign_repo "$OUT.tmp/variants/libssl102/debian/12/prod"

rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "repository ready in $OUT"
