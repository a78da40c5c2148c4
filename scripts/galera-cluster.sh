#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on one machine, for trying c2c on a replicated database
# (the cluster test tier, tests/test_galera.py, runs it; so can you). Debian's mariadb-server and
# galera-4 (and rsync, for the state transfers). Each node has its own data directory and ports,
# and the nodes find each other with gcomm:// on loopback. It never touches the system's MariaDB.
#
#   scripts/galera-cluster.sh start DIR [BASE_PORT]   bootstrap node 1, then join nodes 2 and 3
#   scripts/galera-cluster.sh kill DIR N              kill -9 node N (as a crash would)
#   scripts/galera-cluster.sh rejoin DIR N            start node N again; it catches up (IST/SST)
#   scripts/galera-cluster.sh status DIR              each node: running, wsrep_ready, cluster size
#   scripts/galera-cluster.sh stop DIR                stop every node
#
# Node N (1-3) serves SQL on BASE_PORT+N-1 (default base 33061), replicates on BASE_PORT+10+N-1,
# takes incremental state transfers on BASE_PORT+20+N-1 and full ones on BASE_PORT+30+N-1. Root
# has no password on 127.0.0.1; `mysql+pymysql://root@127.0.0.1:33061,127.0.0.1:33062,
# 127.0.0.1:33063/DB` names the cluster to c2c as a failover list.
set -euo pipefail

usage() { sed -n '2,17p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1 dir=$(realpath -m "$2")
base=${BASE_PORT:-33061}
provider=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
mariadbd=${MARIADBD:-/usr/sbin/mariadbd}
# As root, the nodes run as mysql, as Debian's own MariaDB does: the rsync daemon of a state
# transfer started by root would drop to 'nobody' and could not write the joiner's data. DIR
# must then be reachable by mysql (any directory under /tmp is).
user=$(id -un)
[ "$(id -u)" = 0 ] && user=mysql

port() { echo $((base + $1 - 1)); }
gport() { echo $((base + 10 + $1 - 1)); }
node_dir() { echo "$dir/node$1"; }

write_config() {
  local n=$1 d cluster=""
  d=$(node_dir "$n")
  for m in 1 2 3; do cluster+="${cluster:+,}127.0.0.1:$(gport "$m")"; done
  mkdir -p "$d/data" "$d/tmp"
  [ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")
  cat > "$d/my.cnf" <<EOF
[mysqld]
user=$user
datadir=$d/data
tmpdir=$d/tmp
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$(port "$n")
bind-address=127.0.0.1
skip-name-resolve
# What Galera needs: row-based replication, InnoDB, interleaved auto-increment locks.
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
# Small and quick, for a test machine.
innodb_buffer_pool_size=64M
innodb_log_file_size=48M
innodb_flush_log_at_trx_commit=0
max_connections=300
wsrep_on=ON
wsrep_provider=$provider
wsrep_cluster_name=c2c_galera_test
wsrep_cluster_address=gcomm://$cluster
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$(gport "$n")
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$((base + 30 + n - 1))
wsrep_slave_threads=2
# A node that stops answering is suspected after 2 s and evicted after 4 s (defaults: 5 s, 15 s).
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gport "$n");ist.recv_addr=127.0.0.1:$((base + 20 + n - 1));gcache.size=128M;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT4S;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;pc.wait_prim_timeout=PT30S"
EOF
}

sql() {  # sql N STATEMENT: one statement on node N's socket
  mariadb --defaults-file=/dev/null -uroot -S "$(node_dir "$1")/mysqld.sock" -N -B -e "$2"
}

running() {
  local pidfile
  pidfile="$(node_dir "$1")/mysqld.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_synced() {  # wait_synced N PID: until node N (process PID) says it is Synced, or 120 s
  local n=$1 pid=$2
  for _ in $(seq 1 240); do
    if [ "$(sql "$n" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE_COMMENT'" 2>/dev/null)" = Synced ]; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "node $n died; its log:" >&2; tail -30 "$(node_dir "$n")/error.log" >&2; return 1; }
    sleep 0.5
  done
  echo "node $n not synced after 120 s" >&2
  tail -30 "$(node_dir "$n")/error.log" >&2
  return 1
}

start_node() {  # start_node N [--wsrep-new-cluster]
  local n=$1 d
  shift
  d=$(node_dir "$n")
  if running "$n"; then return 0; fi
  "$mariadbd" --defaults-file="$d/my.cnf" "$@" >>"$d/stdout.log" 2>&1 &
  wait_synced "$n" $!
}

case $command in
  start)
    base=${3:-$base}
    mkdir -p "$dir"
    echo "$base" > "$dir/base_port"
    for n in 1 2 3; do write_config "$n"; done
    [ "$user" = "$(id -un)" ] || chown -R "$user:" "$dir"
    if [ ! -d "$(node_dir 1)/data/mysql" ]; then
      mariadb-install-db --defaults-file="$(node_dir 1)/my.cnf" --auth-root-authentication-method=normal \
        --skip-test-db >"$(node_dir 1)/install.log" 2>&1
    fi
    # Node 1 starts the cluster; 2 and 3 join it and get its data by rsync (SST).
    start_node 1 --wsrep-new-cluster
    sql 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
    start_node 2
    start_node 3
    echo "galera: 3 nodes synced on ports $(port 1), $(port 2), $(port 3)"
    ;;
  kill)
    n=${3:?node number}
    [ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")
    if running "$n"; then kill -9 "$(cat "$(node_dir "$n")/mysqld.pid")"; fi
    rm -f "$(node_dir "$n")/mysqld.pid"
    echo "galera: node $n killed"
    ;;
  rejoin)
    n=${3:?node number}
    [ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")
    # A killed node's grastate says it cannot be trusted (seqno -1): it rejoins by state
    # transfer from a live node, incremental when the donor's gcache still holds the gap.
    start_node "$n"
    echo "galera: node $n rejoined"
    ;;
  status)
    [ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")
    for n in 1 2 3; do
      if running "$n"; then
        echo "node $n (port $(port "$n")): $(sql "$n" "SELECT GROUP_CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_READY','WSREP_CLUSTER_SIZE','WSREP_LOCAL_STATE_COMMENT','WSREP_CLUSTER_STATUS')" 2>&1)"
      else
        echo "node $n (port $(port "$n")): not running"
      fi
    done
    ;;
  stop)
    [ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")
    for n in 3 2 1; do
      if running "$n"; then
        pid=$(cat "$(node_dir "$n")/mysqld.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done
    echo "galera: stopped"
    ;;
  *) usage ;;
esac
