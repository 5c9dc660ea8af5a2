#!/usr/bin/env bash
# `make run`: the Assignar simulator in the background and Dagster's UI in the foreground,
# wired together through the environment; the demo Pay team is seeded and connected to the
# simulator in between (idempotent across restarts), and a local mail catcher prints the
# notifications Dagster's sensors send. Ctrl-C stops everything.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
uv=${UV:-$root/.ci/uv}
simulator_port=${SIMULATOR_PORT:-8700}
dagster_port=${DAGSTER_PORT:-3000}
mail_port=${MAIL_PORT:-8025}
simulator_url=http://127.0.0.1:$simulator_port
dagster_url=http://127.0.0.1:$dagster_port

export ASSIGNAR_API_URL=$simulator_url/v2
export ASSIGNAR_TOKEN_URL=$simulator_url/oauth2/token
export ASSIGNAR_CLIENT_ID=demo-client
export ASSIGNAR_CLIENT_SECRET=demo-secret-change-me
export DAGSTER_HOME=$root/.dagster_home
export PAY_DATABASE_URL=${PAY_DATABASE_URL:-sqlite:///$root/.data/pay.db}
# Notifications go to the local mail catcher (plain SMTP on loopback); links point at this UI.
export SMTP_HOST=127.0.0.1 SMTP_PORT=$mail_port SMTP_STARTTLS=false
export NOTIFY_FROM=assignar-pipeline@localhost DAGSTER_URL=$dagster_url
# The data engineers' alerts (failing checks and jobs, stale data) reach the same mail catcher.
export ALERT_EMAILS=${ALERT_EMAILS:-data-engineering@example.com}
# Dagster writes a ranged run's per-date events in batches (README, Settings).
export DAGSTER_EVENT_BATCH_SIZE=${DAGSTER_EVENT_BATCH_SIZE:-1000}
connection_key=demo
# The simulator keeps its tenant (config, "now" and every change made through its control plane)
# in this file and replays it on a restart, so it keeps agreeing with the Pay database beside it.
simulator_state=$root/.data/simulator.jsonl
simulator_tenant=()
if [[ ! -f $simulator_state ]]; then
  # A new tenant's "now" is the current hour, so "the last 4 weeks" in the UI hold its data.
  # Later starts resume that tenant at its own now: simulated time moves only by /advance.
  simulator_tenant=(--now "$(date -u +%Y-%m-%dT%H:00:00Z)")
fi

say() { printf '==> %s\n' "$*"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$simulator_port" "$dagster_port" "$mail_port"; do
  if port_in_use "$port"; then
    echo "Port $port on 127.0.0.1 is already in use: stop whatever listens there, or choose" \
      "other ports, e.g. make run SIMULATOR_PORT=8701 DAGSTER_PORT=3001 MAIL_PORT=8026" >&2
    exit 1
  fi
done

mkdir -p "$DAGSTER_HOME" "$root/.data"
if [[ ! -f $DAGSTER_HOME/dagster.yaml ]]; then
  # Storage is left to Dagster's default: SQLite files in this directory.
  # The run queue is looked at every second (Dagster's default is 5 s): a sync takes seconds.
  cat >"$DAGSTER_HOME/dagster.yaml" <<'YAML'
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
YAML
fi

simulator_pid=
mail_pid=
stop_group() {
  [[ -n $1 ]] || return 0
  # Each background service runs in its own session (below), so signal its whole process
  # group: uv and the server it started.
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for _ in {1..50}; do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}
stop_simulator() {
  stop_group "$mail_pid"
  stop_group "$simulator_pid"
}
trap stop_simulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Starting the Assignar simulator on $simulator_url"
# setsid: the simulator gets its own process group, so stop_simulator can reach every process
# uv spawns for it, and a Ctrl-C meant for Dagster does not race our orderly shutdown.
setsid "$uv" run --frozen assignar-pipeline simulator serve \
  --host 127.0.0.1 --port "$simulator_port" --state "$simulator_state" "${simulator_tenant[@]}" &
simulator_pid=$!

for _ in {1..300}; do
  port_in_use "$simulator_port" && break
  if ! kill -0 "$simulator_pid" 2>/dev/null; then
    echo "The simulator exited before it listened on port $simulator_port (see above)." >&2
    exit 1
  fi
  sleep 0.2
done
if ! port_in_use "$simulator_port"; then
  echo "The simulator did not listen on port $simulator_port within 60 s." >&2
  exit 1
fi

say "Starting the mail catcher on 127.0.0.1:$mail_port (notifications are printed here)"
setsid "$uv" run --frozen python -m aiosmtpd -n -l "127.0.0.1:$mail_port" &
mail_pid=$!

say "Preparing the Pay database and the demo team"
init_output=$("$uv" run --frozen assignar-pipeline pay init --demo)
printf '%s\n' "$init_output"
pay_database=$(sed -n 's/^Pay database ready: //p' <<<"$init_output")  # password hidden
team_id=$(sed -n 's/^Demo team id: //p' <<<"$init_output")
if [[ -z $team_id ]]; then
  echo "pay init --demo did not report the demo team's id (see above)." >&2
  exit 1
fi
say "Connecting Pay team $team_id to the simulator as '$connection_key'"
"$uv" run --frozen assignar-pipeline connect --key "$connection_key" --team-id "$team_id" \
  --user-email priya.raman@example.com --region au --client-id "$ASSIGNAR_CLIENT_ID" \
  --secret-env ASSIGNAR_CLIENT_SECRET --timezone Australia/Sydney --timesheets --orders
"$uv" run --frozen assignar-pipeline settings --key "$connection_key" --notify payroll@example.com

cat <<MSG

==========================================================================
  Assignar simulator:  $simulator_url  (API $ASSIGNAR_API_URL; its "now" is printed above)
  Simulator state:     $simulator_state  (rm -rf .data starts the demo afresh)
  Pay database:        $pay_database
  Pay connection:      $connection_key  (demo team $team_id; run config connections: [$connection_key])
  Dagster UI:          starting on $dagster_url
  Notifications:       printed below by the mail catcher (127.0.0.1:$mail_port)

  The initial import of '$connection_key' starts by itself within a minute (sensor), then
  the hourly sync keeps it current (schedule hourly_sync; job sync_assignar to run it now).

  Open $dagster_url in your browser. In another terminal, from this directory:
    .venv/bin/assignar-pipeline status
  Ctrl-C stops Dagster and the simulator.
==========================================================================

MSG

say "Starting Dagster (DAGSTER_HOME=$DAGSTER_HOME)"
"$uv" run --frozen dg dev -w workspace.yaml -h 127.0.0.1 -p "$dagster_port"
