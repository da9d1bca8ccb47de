#!/usr/bin/env bash
# nginx (Debian's nginx-light) in front of cluster mode's api processes, on one port, WebSockets
# included: deploy/nginx/sessionflow.conf.template rendered with this machine's upstreams inside
# a main config of its own under SF_RUN (no system nginx is touched). A running proxy reloads
# its configuration instead of restarting, so open connections are kept.
# Usage: start-proxy.sh PORT API_PORT...
source "$(dirname "$0")/lib.sh"
port="${1:?usage: start-proxy.sh PORT API_PORT...}"; shift
(( $# > 0 )) || die "usage: start-proxy.sh PORT API_PORT..."
apt_ensure nginx-light gettext-base

dir="$SF_RUN/nginx-$port"
mkdir -p "$dir/temp"
servers=""
for api_port in "$@"; do servers+="server 127.0.0.1:$api_port max_fails=1 fail_timeout=2s; "; done
SESSIONFLOW_API_SERVERS="$servers" SESSIONFLOW_PROXY_LISTEN="127.0.0.1:$port" \
  envsubst '${SESSIONFLOW_API_SERVERS} ${SESSIONFLOW_PROXY_LISTEN}' <"$SF_ROOT/deploy/nginx/sessionflow.conf.template" >"$dir/sessionflow.conf"
cat >"$dir/nginx.conf" <<CONF
# Made by scripts/start-proxy.sh; edit deploy/nginx/sessionflow.conf.template instead.
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/temp/body;
  proxy_temp_path $dir/temp/proxy;
  fastcgi_temp_path $dir/temp/fastcgi;
  uwsgi_temp_path $dir/temp/uwsgi;
  scgi_temp_path $dir/temp/scgi;
  include $dir/sessionflow.conf;
}
CONF
nginx -t -q -p "$dir" -c "$dir/nginx.conf" || die "nginx refused $dir/nginx.conf"
name="nginx-$port"
if daemon_running "$name"; then
  kill -HUP "$(cat "$SF_RUN/$name.pid")"
  log "proxy on 127.0.0.1:$port reloaded: api ports $*"
else
  start_daemon "$name" nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off;"
  wait_for "nginx on :$port (see $dir/error.log)" 20 port_open "$port"
  log "proxy on 127.0.0.1:$port: api ports $*"
fi
