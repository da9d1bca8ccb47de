# Shared by every bring-up script: where things live and how to wait for them.
# Sourced, not executed.
set -euo pipefail

SF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SF_HOME="${SESSIONFLOW_HOME:-$HOME/.sessionflow}"
SF_BIN="$SF_HOME/bin"
SF_RUN="$SF_HOME/run"
mkdir -p "$SF_BIN" "$SF_RUN"

TEMPORAL_VERSION="v1.5.1"
TEMPORAL_BIN="$SF_BIN/temporal"
TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
# Cluster mode (scripts/up.sh --cluster): the real server on PostgreSQL, its Web UI, a proxy.
TEMPORAL_SERVER_VERSION="v1.29.1"
TEMPORAL_UI_SERVER_VERSION="v2.42.1"
TEMPORAL_SERVER_BIN="$SF_BIN/temporal-server"
TEMPORAL_SQL_TOOL_BIN="$SF_BIN/temporal-sql-tool"
TEMPORAL_UI_BIN="$SF_BIN/temporal-ui"
CLUSTER_TEMPORAL_PORT="${CLUSTER_TEMPORAL_PORT:-7333}"
CLUSTER_TEMPORAL_UI_PORT="${CLUSTER_TEMPORAL_UI_PORT:-8333}"
CLUSTER_PROXY_PORT="${CLUSTER_PROXY_PORT:-8090}"
CLUSTER_DATABASE="${CLUSTER_DATABASE:-sessionflow_cluster}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
# Tests, history recorders and benchmarks run here, so the default namespace the user watches
# in the Web UI shows only their own sessions (test/helpers/testRun.ts has the same default).
TEMPORAL_TEST_NAMESPACE="${TEMPORAL_TEST_NAMESPACE:-sessionflow-test}"
REGISTRY_PORT="${REGISTRY_PORT:-5000}"
# A second registry that requires htpasswd auth (tests of converting to a registry with credentials).
AUTH_REGISTRY_PORT="${AUTH_REGISTRY_PORT:-5001}"
AUTH_REGISTRY_USER="${AUTH_REGISTRY_USER:-sessionflow}"
AUTH_REGISTRY_PASSWORD_FILE="$SF_HOME/registry-$AUTH_REGISTRY_PORT.password"
BASE_IMAGE="${BASE_IMAGE:-sessionflow/base:bookworm}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
PGDATABASE="${PGDATABASE:-sessionflow}"
export PGHOST PGPORT PGUSER

log() { printf '\033[1;34m[sessionflow]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[sessionflow] %s\033[0m\n' "$*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND... — poll until COMMAND succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "$what did not come up within ${seconds}s"
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Installs Debian packages that are missing; apt-get update only when something is.
apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  (( ${#missing[@]} == 0 )) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  # One apt at a time: parallel bring-ups (several checkouts, CI) would fight over dpkg's lock.
  (
    flock -w 600 9 || die "another apt-get held the lock for 10 minutes"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ) 9>"/tmp/sessionflow-apt.lock"
}

# The api and worker run with jemalloc (Debian's libjemalloc2) instead of glibc's malloc: the
# Temporal core's and V8's native allocations come and go in bursts, and glibc kept the peak of
# each thread's arena resident for good (a soak run: api 330 → 680 MB and staying there; with
# jemalloc the same peak was returned within 30 s). The Dockerfile does the same.
JEMALLOC="/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
ensure_jemalloc() { apt_ensure libjemalloc2; [ -e "$JEMALLOC" ] || JEMALLOC="$(ls /usr/lib/*/libjemalloc.so.2 | head -1)"; }

# Starts a long-lived process detached from this shell, with its log and pid in SF_RUN.
start_daemon() {
  local name="$1"; shift
  setsid nohup "$@" >>"$SF_RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$SF_RUN/$name.pid"
}

daemon_running() {
  local pidfile="$SF_RUN/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

stop_daemon() {
  local pidfile="$SF_RUN/$1.pid"
  if daemon_running "$1"; then
    local pid; pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
