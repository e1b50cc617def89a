#!/usr/bin/env bash
# Install and start the real services the integration tests need, then print
# `export NAME=value` lines for them (also written to .cache/test-services.env).
#
#   scripts/test-services.sh [start]      install what is missing, start what is not running
#   scripts/test-services.sh stop         stop what this copy of the repo started (PID files)
#   scripts/test-services.sh status       show what is running
#   scripts/test-services.sh env          print the env file of the last start
#   scripts/test-services.sh clean        stop, then delete runtime data (keeps downloads/images)
#   scripts/test-services.sh token-registry NAME REALM SERVICE ISSUER ROOTCERTBUNDLE [PORT]
#                                         start a registry in token-auth mode (ACR-like)
#   scripts/test-services.sh stop-registry NAME
#
# Services: Docker engine (Debian docker.io), a registry with htpasswd auth (Debian
# docker-registry), base images made without any internet registry, Azurite (npm),
# PostgreSQL 15 and a signed apt repository that plays packages.microsoft.com (Microsoft's
# real ODBC driver, from PyPI; scripts/ms-odbc-repo.sh). Nothing here is needed by the
# product itself: it is test infrastructure.
#
# Why a script and not a compose file: CI machines start with nothing running and cannot
# pull images, so everything is installed from Debian/npm and started as plain processes.
#
# Several clones of the repo may run this at once on one machine (a developer's work tree
# and CI's fresh clone). Each clone keeps its state in its own .cache/ and derives its ports
# from a hash of its path; the Docker engine and the base images are machine-wide and are
# shared (a running engine is reused, image builds are serialised with a machine-wide lock).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
STATE="$CACHE/test-services"
ENV_FILE="$CACHE/test-services.env"
LOGS="$STATE/logs"
RUN="$STATE/run"
# Machine-wide lock for the shared parts (engine start, base images, ODBC repository).
GLOBAL_LOCK="/tmp/mlflow-aca-test-services.lock"
# Machine-wide cache for what every clone can share (the ODBC repository and its key).
MACHINE_CACHE="${ACA_TEST_MACHINE_CACHE:-/var/cache/mlflow-aca-test}"

# Any python3 does for small helpers; prefer Debian's (no pyenv shim start-up cost).
PYTHON="$(command -v /usr/bin/python3 || command -v python3)" || { echo "python3 is required" >&2; exit 1; }

# Pinned versions / names (change here, nowhere else).
AZURITE_VERSION="3.35.0"          # 3.36+ declare node >= 21; Debian/CI has node 20
BUSYBOX_IMAGE="mlflow-aca-test/busybox:latest"
PYTHON_IMAGE="mlflow-aca-test/python:3.11-bookworm"
DEBIAN_MIRROR="${ACA_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTHON_IMAGE_PACKAGES="python3,python3-venv,python3-pip,ca-certificates"
# The same, with a Python that dpkg does not know and without Kerberos/libtirpc/libcurl,
# like python:3.13-slim (build_nokrb_python_image).
NOKRB_PYTHON_IMAGE="mlflow-aca-test/python-nokrb:3.11-bookworm"
# The well-known Azurite/Azure Storage Emulator account (public, documented by Microsoft).
AZURITE_ACCOUNT="devstoreaccount1"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PG_USER="mlflow_aca_test"
PG_DATABASE="mlflow_aca_test"
REGISTRY_USER="mlflow-aca-test"

# ---------------------------------------------------------------------------- helpers

log() { printf '[test-services] %s\n' "$*" >&2; }
die() { printf '[test-services] ERROR: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for error messages).
show_log() {
  local file="$1"
  if [[ -s "$file" ]]; then
    printf -- '--- last lines of %s ---\n' "$file" >&2
    tail -n 25 "$file" >&2
    printf -- '---\n' >&2
  fi
}

now() { date +%s; }

# wait_until DESCRIPTION SECONDS PID LOGFILE COMMAND...
# Polls COMMAND until it succeeds. Fails early when PID (if not empty) has died, so a
# crashed service is reported at once with its log instead of timing out.
wait_until() {
  local desc="$1" seconds="$2" pid="$3" logfile="$4"
  shift 4
  local deadline=$(( $(now) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      show_log "$logfile"
      die "$desc: the process (pid $pid) exited; see $logfile"
    fi
    if (( $(now) >= deadline )); then
      show_log "$logfile"
      die "$desc: not ready after ${seconds}s; see $logfile"
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE PATTERN: the PID in PIDFILE runs and its command line contains PATTERN
# (guards against a recycled PID after a reboot or a kill -9).
pid_alive() {
  local pidfile="$1" pattern="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# stop_pid NAME PIDFILE PATTERN: SIGTERM, wait up to 20 s, then SIGKILL.
stop_pid() {
  local name="$1" pidfile="$2" pattern="$3" pid
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(<"$pidfile")"
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  local deadline=$(( $(now) + 20 ))
  # pid_alive, not kill -0: an exited daemon stays a zombie until PID 1 reaps it, and a
  # zombie's command line is empty.
  while pid_alive "$pidfile" "$pattern"; do
    if (( $(now) >= deadline )); then
      log "$name did not stop within 20s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

# port_free PORT: nothing listens on PORT (on any address).
port_free() {
  "$PYTHON" - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
# As the servers do: a port whose only users are TIME_WAIT leftovers is free.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# Ports: a block of 10 per clone, derived from the repo path so two clones do not collide.
# Offsets: 0 registry, 1 azurite, 2 postgres, 3-8 token-auth registries, 9 ODBC repository.
PORT_BASE=$(( 21000 + ( $(printf '%s' "$ROOT" | cksum | cut -d' ' -f1) % 400 ) * 10 ))

# pick_port NAME OFFSET: the port this clone used before for NAME if it is free again,
# else the first free port from PORT_BASE+OFFSET on.
pick_port() {
  local name="$1" offset="$2" p
  if [[ -s "$RUN/$name.port" ]]; then
    p="$(<"$RUN/$name.port")"
    if port_free "$p"; then echo "$p"; return 0; fi
  fi
  for (( p = PORT_BASE + offset; p < PORT_BASE + offset + 200; p++ )); do
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free port found for $name from $(( PORT_BASE + offset )) on"
}

# http_code URL [curl args...]: the HTTP status ("000" when nothing answers).
http_code() {
  local url="$1"; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------------------- packages

APT_PACKAGES=(
  docker.io         # engine 20.10 + containerd + runc (the client on PATH may be newer)
  docker-registry   # distribution v2 registry
  apache2-utils     # htpasswd (bcrypt) for the registry's basic auth
  busybox-static    # a 2 MB base image without any registry
  debootstrap       # a Debian bookworm base image without any registry
  postgresql        # PostgreSQL 15
  unixodbc tdsodbc  # lets pyodbc load a driver (FreeTDS); no SQL Server runs here
  hyperfine         # timing whole commands in benchmarks
  curl              # readiness checks below
  dpkg-dev gnupg patchelf python3-pip  # scripts/ms-odbc-repo.sh (index, signing, pip download)
  zsh fish          # run the lines `mlflow-aca env --shell` prints for real
)

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  if (( ${#missing[@]} == 0 )); then
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "packages missing (${missing[*]}) and not root: install them first"
  log "installing Debian packages: ${missing[*]}"
  # Keep package maintainer scripts from starting services (the docker.io and
  # docker-registry init scripts would start a default dockerd / an unauthenticated
  # registry on :5000). Debian images usually ship this file already.
  local made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local apt_log="$LOGS/apt.log" rc=0
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
    # A stale package list (a machine image made weeks ago) points at removed versions.
    log "apt-get install failed; refreshing package lists and retrying"
    { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "${missing[@]}"; } \
      >>"$apt_log" 2>&1 || rc=$?
  fi
  if [[ -n "$made_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if (( rc != 0 )); then
    show_log "$apt_log"
    die "apt-get install ${missing[*]} failed; see $apt_log"
  fi
}

# FreeTDS registers itself in odbcinst.ini only on some installs; make sure pyodbc finds
# a driver named "FreeTDS".
register_freetds() {
  if ! odbcinst -q -d 2>/dev/null | grep -q '^\[FreeTDS\]'; then
    local lib
    lib="$(dpkg -L tdsodbc | grep -m1 '/libtdsodbc\.so$')" || die "tdsodbc: libtdsodbc.so not found"
    printf '[FreeTDS]\nDescription=FreeTDS ODBC driver\nDriver=%s\n' "$lib" >"$STATE/freetds.ini"
    odbcinst -i -d -f "$STATE/freetds.ini" >/dev/null
  fi
}

# ---------------------------------------------------------------------------- docker

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

start_docker() {
  if docker_answers; then
    return 0
  fi
  # Another clone may be starting the engine right now: decide under the machine lock.
  (
    flock -w 120 8 || die "could not take $GLOBAL_LOCK within 120s"
    if docker_answers; then exit 0; fi
    log "starting dockerd (log: $LOGS/dockerd.log)"
    # A dockerd killed with -9 leaves its pidfile; dockerd refuses to start if the PID in it
    # is alive, and replaces it otherwise, so nothing to clean here.
    nohup dockerd --host unix:///var/run/docker.sock >>"$LOGS/dockerd.log" 2>&1 </dev/null 8>&- 9>&- &
    echo $! >"$RUN/dockerd.pid"
    wait_until "dockerd" 60 "$!" "$LOGS/dockerd.log" docker_answers
  ) 8>"$GLOBAL_LOCK"
}

# The host's address on Docker's default bridge, where containers reach host services.
# Engine 20.10 leaves IPAM's Gateway empty for the default bridge: read the interface.
bridge_gateway() {
  local gw ifname
  gw="$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
  if [[ -z "$gw" ]]; then
    ifname="$(docker network inspect bridge \
      --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)"
    gw="$(ip -4 -o addr show dev "${ifname:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
  fi
  echo "$gw"
}

image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# A ~2 MB image: Debian's static busybox plus one symlink per applet.
build_busybox_image() {
  local hash
  hash="$(sha256sum /bin/busybox | cut -c1-16)"
  if [[ "$(image_label "$BUSYBOX_IMAGE" mlflow-aca-test.source)" == "$hash" ]]; then
    return 0
  fi
  log "building $BUSYBOX_IMAGE from busybox-static"
  local dir="$CACHE/images/busybox-rootfs"
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,etc,tmp,root}
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  tar -C "$dir" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    --change "LABEL mlflow-aca-test.source=$hash" \
    - "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$dir"
}

# Debian bookworm + python3/venv/pip, trusting this machine's re-signing CA (TEST ONLY:
# the product template must never contain this CA). The debootstrap result is cached as a
# tarball keyed by the package list and the CA files, so a rebuild after `docker rmi` or on
# a fresh engine takes seconds.
build_python_image() {
  local ca_files=() f
  for f in /usr/local/share/ca-certificates/*.crt; do
    [[ -e "$f" ]] && ca_files+=("$f")
  done
  local key
  key="$( { echo "$PYTHON_IMAGE_PACKAGES $DEBIAN_MIRROR"; cat "${ca_files[@]}" /dev/null; } \
          | sha256sum | cut -c1-16)"
  if [[ "$(image_label "$PYTHON_IMAGE" mlflow-aca-test.source)" == "$key" ]]; then
    return 0
  fi
  local tarball="$CACHE/images/bookworm-python-$key.tar"
  if [[ ! -s "$tarball" ]]; then
    log "debootstrap bookworm (minbase + $PYTHON_IMAGE_PACKAGES); ~1 min, log: $LOGS/debootstrap.log"
    local dir="$CACHE/images/bookworm-rootfs"
    # A half-finished earlier run may have left /proc or /sys mounted inside it.
    umount -l "$dir/proc" "$dir/sys" 2>/dev/null || true
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! timeout 900 debootstrap --variant=minbase --include="$PYTHON_IMAGE_PACKAGES" \
        bookworm "$dir" "$DEBIAN_MIRROR" >"$LOGS/debootstrap.log" 2>&1; then
      umount -l "$dir/proc" "$dir/sys" 2>/dev/null || true
      show_log "$LOGS/debootstrap.log"
      die "debootstrap failed; see $LOGS/debootstrap.log"
    fi
    umount -l "$dir/proc" "$dir/sys" 2>/dev/null || true
    if (( ${#ca_files[@]} > 0 )); then
      mkdir -p "$dir/usr/local/share/ca-certificates/mlflow-aca-test"
      cp "${ca_files[@]}" "$dir/usr/local/share/ca-certificates/mlflow-aca-test/"
    fi
    chroot "$dir" update-ca-certificates >>"$LOGS/debootstrap.log" 2>&1 \
      || die "update-ca-certificates in the image failed; see $LOGS/debootstrap.log"
    # Smaller image: package lists and caches are not needed to run python.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/var/log/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
    tar -C "$dir" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
      -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
    # Keep only the current cache key.
    find "$CACHE/images" -maxdepth 1 -name 'bookworm-python-*.tar' ! -name "$(basename "$tarball")" -delete
  fi
  log "importing $PYTHON_IMAGE from $tarball"
  local bundle=/etc/ssl/certs/ca-certificates.crt
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PIP_CERT=$bundle" \
    --change "ENV REQUESTS_CA_BUNDLE=$bundle" \
    --change "ENV SSL_CERT_FILE=$bundle" \
    --change 'CMD ["python3"]' \
    --change "LABEL mlflow-aca-test.source=$key" \
    --change 'LABEL mlflow-aca-test.note=test-only-CA-trust' \
    "$tarball" "$PYTHON_IMAGE" >/dev/null
}

# $PYTHON_IMAGE turned into what python:3.13-slim is in the respect that matters for the
# ODBC driver: a Python that dpkg does not manage, so nothing pulls in Kerberos. Debian's
# own python3 cannot show this: libpython3.11-stdlib depends on libnsl2/libtirpc3 (for the
# nis module), and libtirpc3 depends on libgssapi-krb5-2, which the driver needs (ldd) and
# which images whose Python is not Debian's lack (notes/odbc-and-sql.md). Python 3.13 has no
# nis module (PEP 594), so python:3.13-slim has neither libtirpc3 nor Kerberos.
# The steps, as the official python image's Dockerfile does for its /usr/local Python: mark
# the libraries the interpreter and its modules load (ldd) as manually installed, then make
# dpkg forget the python3 packages (their files stay), drop the nis module, and purge
# libnsl2, libtirpc3 and the Kerberos libraries with dpkg, which refuses if anything still
# depends on them. apt stays consistent (`apt-get check`), and the result is checked: no
# Kerberos, libtirpc, curl or python package left, ssl/sqlite3/venv/pip still work.
build_nokrb_python_image() {
  local source key
  source="$(docker image inspect --format '{{.Id}}' "$PYTHON_IMAGE")"
  key="$( { echo "$source"; declare -f build_nokrb_python_image; } | sha256sum | cut -c1-16)"
  if [[ "$(image_label "$NOKRB_PYTHON_IMAGE" mlflow-aca-test.source)" == "$key" ]]; then
    return 0
  fi
  log "building $NOKRB_PYTHON_IMAGE (log: $LOGS/nokrb-image.log)"
  if ! docker build --pull=false --label "mlflow-aca-test.source=$key" -t "$NOKRB_PYTHON_IMAGE" - \
      >"$LOGS/nokrb-image.log" 2>&1 <<EOF
FROM $PYTHON_IMAGE
RUN set -eu; \\
    rm -f /usr/lib/python3.11/lib-dynload/nis.cpython-*.so; \\
    find /usr/bin/python3.11 /usr/lib/python3.11 -type f \\( -name python3.11 -o -name '*.so' \\) \\
      -exec ldd '{}' ';' | awk '/=>/ { so = \$(NF-1); gsub("^/(usr/)?", "", so); printf "*%s\\n", so }' \\
      | sort -u | xargs -r dpkg-query --search | cut -d: -f1 | sort -u | grep -Ev '^(lib)?python3' \\
      | xargs -r apt-mark manual >/dev/null; \\
    dpkg-query -W -f '\${Package}\\n' | grep -E '^(lib)?python3' >/tmp/forget; \\
    python3 -c 'import sys; forget = set(open("/tmp/forget").read().split()); path = "/var/lib/dpkg/status"; stanzas = open(path).read().strip().split("\\n\\n"); keep = [s for s in stanzas if s.split("\\n", 1)[0].split(": ", 1)[1] not in forget]; open(path, "w").write("\\n\\n".join(keep) + "\\n")'; \\
    for p in \$(cat /tmp/forget); do rm -f /var/lib/dpkg/info/\$p.* /var/lib/dpkg/info/\$p:amd64.*; done; \\
    dpkg --purge libnsl2 libtirpc3 libtirpc-common libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 \\
      libkeyutils1; \\
    apt-get check; \\
    if dpkg-query -W -f '\${Package}\\n' | grep -E 'krb|gssapi|k5crypto|tirpc|curl|python'; then exit 1; fi; \\
    python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, readline, uuid, venv'; \\
    python3 -m venv /tmp/v && /tmp/v/bin/pip --version && rm -rf /tmp/v /tmp/forget
EOF
  then
    show_log "$LOGS/nokrb-image.log"
    die "building $NOKRB_PYTHON_IMAGE failed; see $LOGS/nokrb-image.log"
  fi
}

build_images() {
  (
    flock -w 900 8 || die "could not take $GLOBAL_LOCK within 900s"
    build_busybox_image
    build_python_image
    build_nokrb_python_image
  ) 8>"$GLOBAL_LOCK"
}

# ---------------------------------------------------------------------------- registry

# write_registry_config NAME PORT AUTH_YAML: one config shape for every instance; only the
# auth section differs (htpasswd for the plain test registry, token for the ACR-like one).
write_registry_config() {
  local name="$1" port="$2" auth="$3" dir="$STATE/registry/$1"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
# generated by scripts/test-services.sh; instance "$name"
version: 0.1
log:
  level: info
  fields:
    instance: $name
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(random_hex 16)
  headers:
    X-Content-Type-Options: [nosniff]
$auth
EOF
}

# start_registry NAME PORT: start the instance configured in registry/NAME, wait for /v2/.
start_registry() {
  local name="$1" port="$2" dir="$STATE/registry/$1"
  local pidfile="$RUN/registry-$name.pid" logfile="$LOGS/registry-$name.log"
  stop_pid "registry $name" "$pidfile" "$dir/config.yml"
  nohup docker-registry serve "$dir/config.yml" >>"$logfile" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$pidfile"
  echo "$port" >"$RUN/registry-$name.port"
  # With auth on, an unauthenticated GET /v2/ answers 401: that means "up".
  wait_until "registry $name" 20 "$pid" "$logfile" \
    bash -c "[[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$port/v2/)\" == 401 ]]"
}

start_main_registry() {
  local name=main dir="$STATE/registry/main"
  local pidfile="$RUN/registry-main.pid"
  if pid_alive "$pidfile" "$dir/config.yml" \
     && [[ "$(http_code "http://127.0.0.1:$(<"$RUN/registry-main.port")/v2/" \
              -u "$REGISTRY_USER:$REGISTRY_PASSWORD")" == 200 ]]; then
    REGISTRY_PORT="$(<"$RUN/registry-main.port")"
    return 0
  fi
  REGISTRY_PORT="$(pick_port registry-main 0)"
  mkdir -p "$dir"
  # distribution accepts only bcrypt entries.
  htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$dir/htpasswd" 2>/dev/null
  write_registry_config "$name" "$REGISTRY_PORT" "auth:
  htpasswd:
    realm: mlflow-aca-test
    path: $dir/htpasswd"
  log "starting registry (htpasswd) on 127.0.0.1:$REGISTRY_PORT"
  start_registry "$name" "$REGISTRY_PORT"
}

# token-registry NAME REALM SERVICE ISSUER ROOTCERTBUNDLE [PORT]
# A registry that trusts bearer tokens (JWT) from a token server, as ACR does with its
# /oauth2/token endpoint. The token server (the tests' Azure stand-in) signs tokens with a
# key whose certificate is in ROOTCERTBUNDLE. Prints NAME=value lines on stdout.
cmd_token_registry() {
  (( $# >= 5 )) || die "usage: $0 token-registry NAME REALM SERVICE ISSUER ROOTCERTBUNDLE [PORT]"
  local name="$1" realm="$2" service="$3" issuer="$4" bundle="$5" port="${6:-}"
  [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ && "$name" != main ]] \
    || die "registry name must be [a-z0-9-]+ and not 'main': $name"
  [[ -s "$bundle" ]] || die "root certificate bundle not found or empty: $bundle"
  command -v docker-registry >/dev/null || die "docker-registry is not installed: run '$0' first"
  bundle="$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")"
  # Token instances take ports from PORT_BASE+3 on (pick_port skips the ones in use).
  [[ -n "$port" ]] || port="$(pick_port "registry-$name" 3)"
  write_registry_config "$name" "$port" "auth:
  token:
    realm: \"$realm\"
    service: \"$service\"
    issuer: \"$issuer\"
    rootcertbundle: $bundle"
  log "starting registry $name (token auth, realm $realm) on 127.0.0.1:$port"
  start_registry "$name" "$port"
  echo "REGISTRY=127.0.0.1:$port"
  echo "REGISTRY_URL=http://127.0.0.1:$port"
  echo "PID=$(<"$RUN/registry-$name.pid")"
  echo "LOG=$LOGS/registry-$name.log"
}

cmd_stop_registry() {
  (( $# == 1 )) || die "usage: $0 stop-registry NAME"
  [[ "$1" != main ]] || die "the main registry stops with '$0 stop'"
  stop_pid "registry $1" "$RUN/registry-$1.pid" "$STATE/registry/$1/config.yml"
  # Token-auth instances are throw-away (one per test): drop their config and storage.
  rm -rf "$RUN/registry-$1.port" "$STATE/registry/$1"
}

# ---------------------------------------------------------------------------- ODBC repository

# A signed apt repository laid out like packages.microsoft.com, carrying Microsoft's real
# msodbcsql18 driver (scripts/ms-odbc-repo.sh). The repository and its signing key are
# machine-wide (built once, keyed by the builder script's content); each clone serves it
# over plain HTTP on its own port, bound to the Docker bridge gateway so build containers
# reach it at http://<gateway>:<port>/debian/12/prod and .../keys/microsoft.asc, the same
# relative paths as Microsoft's. Plain HTTP to the gateway stays on this host: the machine's
# TLS re-signing proxy only sees traffic leaving it (checked: a build container's download
# of InRelease is byte-identical to the file served).
ms_repo_dir() {
  local base="$MACHINE_CACHE"
  mkdir -p "$base" 2>/dev/null && [[ -w "$base" ]] || base="$CACHE"
  echo "$base/ms-odbc-repo-$(sha256sum "$ROOT/scripts/ms-odbc-repo.sh" | cut -c1-16)"
}

build_ms_repo() {
  MS_REPO_DIR="$(ms_repo_dir)"
  (
    flock -w 900 8 || die "could not take $GLOBAL_LOCK within 900s"
    [[ -s "$MS_REPO_DIR/debian/12/prod/dists/bookworm/InRelease" ]] && exit 0
    log "building the ODBC repository in $MS_REPO_DIR (log: $LOGS/ms-odbc-repo.log)"
    "$ROOT/scripts/ms-odbc-repo.sh" "$MS_REPO_DIR" "$(dirname "$MS_REPO_DIR")/ms-odbc-repo-gnupg" \
      >"$LOGS/ms-odbc-repo.log" 2>&1 \
      || { show_log "$LOGS/ms-odbc-repo.log"; die "building the ODBC repository failed"; }
  ) 8>"$GLOBAL_LOCK"
}

start_ms_repo() {
  local gw="$1" pidfile="$RUN/ms-repo.pid" logfile="$LOGS/ms-repo.log"
  # The pattern names the directory: a rebuilt repository (new key) restarts the server.
  local pattern="http.server --directory $MS_REPO_DIR"
  if pid_alive "$pidfile" "$pattern" \
     && [[ "$(http_code "http://$gw:$(<"$RUN/ms-repo.port")/keys/microsoft.asc")" == 200 ]]; then
    MS_REPO_PORT="$(<"$RUN/ms-repo.port")"
    return 0
  fi
  stop_pid "ODBC repository" "$pidfile" "http.server --directory"
  MS_REPO_PORT="$(pick_port ms-repo 9)"
  log "serving the ODBC repository on http://$gw:$MS_REPO_PORT"
  nohup "$PYTHON" -m http.server --directory "$MS_REPO_DIR" --bind "$gw" "$MS_REPO_PORT" \
    >>"$logfile" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$pidfile"
  echo "$MS_REPO_PORT" >"$RUN/ms-repo.port"
  wait_until "ODBC repository" 20 "$pid" "$logfile" \
    bash -c "[[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://$gw:$MS_REPO_PORT/keys/microsoft.asc)\" == 200 ]]"
}

# ---------------------------------------------------------------------------- azurite

install_azurite() {
  local main="$CACHE/azurite/node_modules/azurite/dist/src/blob/main.js"
  local installed=""
  [[ -f "$CACHE/azurite/node_modules/azurite/package.json" ]] && installed="$(
    node -p 'require(process.argv[1]).version' "$CACHE/azurite/node_modules/azurite/package.json")"
  if [[ -f "$main" && "$installed" == "$AZURITE_VERSION" ]]; then
    return 0
  fi
  log "npm install azurite@$AZURITE_VERSION into .cache/azurite"
  mkdir -p "$CACHE/azurite"
  # A package.json of its own so npm does not walk up into the repo.
  printf '{"name":"mlflow-aca-test-azurite","private":true}\n' >"$CACHE/azurite/package.json"
  if ! (cd "$CACHE/azurite" && timeout 600 npm install --no-audit --no-fund --loglevel=error \
          --save-exact "azurite@$AZURITE_VERSION") >"$LOGS/npm.log" 2>&1; then
    show_log "$LOGS/npm.log"
    die "npm install azurite@$AZURITE_VERSION failed; see $LOGS/npm.log"
  fi
  [[ -f "$main" ]] || die "azurite installed but $main is missing"
}

start_azurite() {
  local main="$CACHE/azurite/node_modules/azurite/dist/src/blob/main.js"
  local pidfile="$RUN/azurite.pid" logfile="$LOGS/azurite.log"
  if pid_alive "$pidfile" "$main" && [[ "$(http_code "http://127.0.0.1:$(<"$RUN/azurite.port")/")" != 000 ]]; then
    AZURITE_PORT="$(<"$RUN/azurite.port")"
    return 0
  fi
  stop_pid azurite "$pidfile" "$main"
  AZURITE_PORT="$(pick_port azurite 1)"
  log "starting Azurite blob on 0.0.0.0:$AZURITE_PORT"
  mkdir -p "$STATE/azurite-data"
  # 0.0.0.0 so containers reach it through the bridge gateway; --loose and
  # --skipApiVersionCheck because the SDK may be newer than this Azurite.
  # Run node directly (not npx) so the PID we keep is the server's.
  (cd "$STATE/azurite-data" && exec nohup node "$main" \
      --blobHost 0.0.0.0 --blobPort "$AZURITE_PORT" \
      --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry \
      >>"$logfile" 2>&1 </dev/null 9>&-) &
  local pid=$!
  echo "$pid" >"$pidfile"
  echo "$AZURITE_PORT" >"$RUN/azurite.port"
  wait_until "azurite" 30 "$pid" "$logfile" \
    bash -c "[[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$AZURITE_PORT/)\" != 000 ]]"
}

# ---------------------------------------------------------------------------- postgres

PG_BIN="/usr/lib/postgresql/15/bin"

# PostgreSQL refuses to run as root: its data and socket directories belong to the
# postgres user, who must be able to traverse every parent directory. A clone under a
# private home (mode 700) cannot host them; fall back to /tmp then.
pg_dirs() {
  PGDATA="$CACHE/pg"
  PG_SOCKET_DIR="$STATE/pg-socket"
  PG_LOG="$LOGS/postgres.log"
  PG_FALLBACK="/tmp/mlflow-aca-test-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
  if ! (cd / && runuser -u postgres -- test -x "$CACHE") 2>/dev/null; then
    PGDATA="$PG_FALLBACK/pg"
    PG_SOCKET_DIR="$PG_FALLBACK/pg-socket"
    PG_LOG="$PG_FALLBACK/postgres.log"
  fi
  # Unix socket paths are limited to 107 bytes ("$dir/.s.PGSQL.NNNNN").
  if (( ${#PG_SOCKET_DIR} > 80 )); then
    PG_SOCKET_DIR="$PG_FALLBACK/pg-socket"
  fi
}

# As the postgres user, from / (it may not be allowed into the current directory).
pg_as() { (cd / && runuser -u postgres -- "$@"); }
psql_admin() {
  pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres "$@"
}

start_postgres() {
  [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 binaries not found in $PG_BIN"
  pg_dirs
  local logfile="$PG_LOG"
  mkdir -p "$(dirname "$PGDATA")" "$PG_SOCKET_DIR" "$(dirname "$PG_LOG")"
  chown postgres: "$PG_SOCKET_DIR"
  touch "$logfile" && chown postgres: "$logfile"

  if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    log "initdb into $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA" && chown postgres: "$PGDATA" && chmod 700 "$PGDATA"
    pg_as "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >>"$logfile" 2>&1 \
      || { show_log "$logfile"; die "initdb failed; see $logfile"; }
    # Local socket: trust (admin work from this script). TCP: passwords, from loopback and
    # from the Docker bridge networks (172.16.0.0/12) so containers can connect.
    cat >"$PGDATA/pg_hba.conf" <<'EOF'
local   all all                 trust
host    all all 127.0.0.1/32    scram-sha-256
host    all all ::1/128         scram-sha-256
host    all all 172.16.0.0/12   scram-sha-256
EOF
    # Listen on every address: the bridge gateway only exists once dockerd runs and can
    # differ between machines; pg_hba above limits who may log in. Durability is not
    # needed for test data, speed is.
    cat >>"$PGDATA/postgresql.conf" <<'EOF'

# --- scripts/test-services.sh ---
listen_addresses = '*'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  fi

  if pg_as "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    # Already running (this clone started it earlier): postmaster.pid line 4 is its port.
    PG_PORT="$(sed -n 4p "$PGDATA/postmaster.pid")"
    echo "$PG_PORT" >"$RUN/postgres.port"
  else
    PG_PORT="$(pick_port postgres 2)"
    log "starting PostgreSQL on port $PG_PORT (socket dir $PG_SOCKET_DIR)"
    # pg_ctl -w waits for the server to accept connections, -t bounds that wait.
    pg_as "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$logfile" -w -t 60 \
      -o "-p $PG_PORT -k '$PG_SOCKET_DIR'" start >/dev/null 9>&- \
      || { show_log "$logfile"; die "PostgreSQL did not start; see $logfile"; }
    echo "$PG_PORT" >"$RUN/postgres.port"
  fi

  # Role and database; the password is (re)set on every start so it always matches the
  # secrets file. CREATEDB lets tests make throw-away databases.
  psql_admin -d postgres <<EOF >/dev/null
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$PG_USER')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE "$PG_USER" WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DATABASE', '$PG_USER')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DATABASE') \gexec
EOF
}

stop_postgres() {
  pg_dirs
  if [[ -s "$PGDATA/PG_VERSION" ]] && pg_as "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "stopping PostgreSQL"
    pg_as "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null \
      || die "PostgreSQL did not stop; see $PG_LOG"
  fi
}

# ---------------------------------------------------------------------------- commands

load_secrets() {
  # Generated once per clone and reused, so restarts keep the same credentials.
  if [[ ! -s "$STATE/secrets.env" ]]; then
    umask 077
    printf 'REGISTRY_PASSWORD=%s\nPG_PASSWORD=%s\n' "$(random_hex 16)" "$(random_hex 16)" \
      >"$STATE/secrets.env"
    umask 022
  fi
  # shellcheck disable=SC1091
  source "$STATE/secrets.env"
}

write_env() {
  local gw="$1" tmp="$ENV_FILE.tmp"
  local blob="http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT"
  local blob_c="http://$gw:$AZURITE_PORT/$AZURITE_ACCOUNT"
  local cs="DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY"
  {
    echo "# written by scripts/test-services.sh at $(date -u +%FT%TZ); source it"
    printf "export %s='%s'\n" \
      ACA_TEST_ENV_FILE "$ENV_FILE" \
      ACA_TEST_SERVICES_SCRIPT "$ROOT/scripts/test-services.sh" \
      ACA_TEST_DOCKER_GATEWAY "$gw" \
      ACA_TEST_BUSYBOX_IMAGE "$BUSYBOX_IMAGE" \
      ACA_TEST_PYTHON_IMAGE "$PYTHON_IMAGE" \
      ACA_TEST_PYTHON_NOKRB_IMAGE "$NOKRB_PYTHON_IMAGE" \
      ACA_TEST_MS_REPO_URL "http://$gw:$MS_REPO_PORT/debian/12/prod" \
      ACA_TEST_MS_KEY_URL "http://$gw:$MS_REPO_PORT/keys/microsoft.asc" \
      ACA_TEST_MS_REPO_MISSING_LIB_URL "http://$gw:$MS_REPO_PORT/variants/libssl102/debian/12/prod" \
      ACA_TEST_REGISTRY "127.0.0.1:$REGISTRY_PORT" \
      ACA_TEST_REGISTRY_URL "http://127.0.0.1:$REGISTRY_PORT" \
      ACA_TEST_REGISTRY_USER "$REGISTRY_USER" \
      ACA_TEST_REGISTRY_PASSWORD "$REGISTRY_PASSWORD" \
      ACA_TEST_AZURITE_PORT "$AZURITE_PORT" \
      ACA_TEST_AZURITE_BLOB_ENDPOINT "$blob" \
      ACA_TEST_AZURITE_CONNECTION_STRING "$cs;BlobEndpoint=$blob;" \
      ACA_TEST_AZURITE_CONTAINER_CONNECTION_STRING "$cs;BlobEndpoint=$blob_c;" \
      ACA_TEST_PG_HOST 127.0.0.1 \
      ACA_TEST_PG_PORT "$PG_PORT" \
      ACA_TEST_PG_USER "$PG_USER" \
      ACA_TEST_PG_PASSWORD "$PG_PASSWORD" \
      ACA_TEST_PG_DATABASE "$PG_DATABASE" \
      ACA_TEST_PG_SOCKET_DIR "$PG_SOCKET_DIR" \
      ACA_TEST_PG_URL "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE" \
      ACA_TEST_PG_CONTAINER_URL "postgresql://$PG_USER:$PG_PASSWORD@$gw:$PG_PORT/$PG_DATABASE"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

# timed STEP COMMAND...: run COMMAND and note how long it took (printed at the end, so a
# slow CI run shows where its time went).
TIMINGS=""
timed() {
  local step="$1" start_us
  shift
  start_us="${EPOCHREALTIME/./}"
  "$@"
  local ms=$(( (${EPOCHREALTIME/./} - start_us) / 1000 ))
  TIMINGS+="$(printf ' %s=%d.%01ds' "$step" $(( ms / 1000 )) $(( ms % 1000 / 100 )))"
}

cmd_start() {
  timed packages install_packages
  register_freetds
  timed azurite-install install_azurite
  timed docker start_docker
  local gw
  gw="$(bridge_gateway)"
  [[ -n "$gw" ]] || die "could not read the gateway of Docker's bridge network"
  timed images build_images
  load_secrets
  timed registry start_main_registry
  timed azurite start_azurite
  timed postgres start_postgres
  timed odbc-repo-build build_ms_repo
  timed odbc-repo start_ms_repo "$gw"
  write_env "$gw"
  log "ready:${TIMINGS}; env written to $ENV_FILE"
  grep '^export ' "$ENV_FILE"
}

cmd_stop() {
  local f name
  for f in "$RUN"/registry-*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f" .pid)"; name="${name#registry-}"
    stop_pid "registry $name" "$f" "$STATE/registry/$name/config.yml"
  done
  stop_pid azurite "$RUN/azurite.pid" "azurite/dist/src/blob/main.js"
  stop_pid "ODBC repository" "$RUN/ms-repo.pid" "http.server --directory"
  stop_postgres
  # The engine is machine-wide; stop it only if this clone started it.
  stop_pid dockerd "$RUN/dockerd.pid" dockerd
  rm -f "$ENV_FILE"
}

cmd_status() {
  local f name
  if docker_answers; then echo "docker: answering"; else echo "docker: not answering"; fi
  for f in "$RUN"/registry-*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f" .pid)"; name="${name#registry-}"
    if pid_alive "$f" "$STATE/registry/$name/config.yml"; then
      echo "registry $name: running on 127.0.0.1:$(cat "$RUN/registry-$name.port" 2>/dev/null)"
    else
      echo "registry $name: stopped"
    fi
  done
  if pid_alive "$RUN/azurite.pid" "azurite/dist/src/blob/main.js"; then
    echo "azurite: running on port $(<"$RUN/azurite.port")"
  else
    echo "azurite: stopped"
  fi
  if pid_alive "$RUN/ms-repo.pid" "http.server --directory"; then
    echo "odbc repository: running on port $(<"$RUN/ms-repo.port")"
  else
    echo "odbc repository: stopped"
  fi
  pg_dirs
  if [[ -s "$PGDATA/PG_VERSION" ]] && pg_as "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    echo "postgres: running on port $(<"$RUN/postgres.port")"
  else
    echo "postgres: stopped"
  fi
}

cmd_clean() {
  cmd_stop
  pg_dirs
  log "removing runtime data (registry storage, database, logs); keeping downloads and images"
  rm -rf "$STATE" "$PGDATA" "$ENV_FILE" "$PG_FALLBACK"
}

main() {
  mkdir -p "$LOGS" "$RUN"
  local cmd="${1:-start}"
  [[ $# -gt 0 ]] && shift
  # One invocation at a time per clone (two test runs starting services together).
  # Every daemon started below gets this fd closed ("9>&-"): an inherited copy would keep
  # the lock held for as long as the daemon lives.
  exec 9>"$STATE/lock"
  flock -w 900 9 || die "another scripts/test-services.sh holds $STATE/lock for 900s"
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) [[ -s "$ENV_FILE" ]] || die "no $ENV_FILE: run '$0' first"; grep '^export ' "$ENV_FILE" ;;
    clean) cmd_clean ;;
    token-registry) cmd_token_registry "$@" ;;
    stop-registry) cmd_stop_registry "$@" ;;
    -h|--help|help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command: $cmd (try --help)" ;;
  esac
}

main "$@"
