#!/usr/bin/env bash
# run.sh: run the bot swarm listed in a Procfile, restart what dies, stop it all cleanly.
#
# One supervisor (this script) starts every Procfile entry as `bash -c COMMAND` in a
# process group of its own, so that stopping a process also stops whatever it spawned.
# A single loop blocks in `wait -n` until a child exits or a `sleep` started for the next
# due restart ends (2 s at most), and schedules restarts: an idle swarm wakes it rarely.
# Output of each process goes through a FIFO of its own (one per start) to a small reader
# that appends it to LOG_DIR/NAME.log and prints it as "NAME | line". The supervisor keeps
# one state file per process in RUN_DIR/procs, which `status` reads. Run ./run.sh --help.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: ./run.sh [start] [--no-build] [--procfile FILE] [--detach]
       ./run.sh status | stop | logs [NAME] | --help

Commands:
  start        build the workspace (cargo build --release --workspace --bins), then run
               every process of the Procfile, restarting those that die, until Ctrl-C,
               SIGTERM or SIGHUP stops them all; this is the default command
  status       each process's state, pid, uptime, restart count and last exit (when,
               and when a process waiting to be restarted will be)
  stop         stop a swarm started with --detach (or one running in another terminal)
  logs [NAME]  follow the log of NAME, or of every process (tail -F)

Options of start:
  --no-build        do not build first
  --procfile FILE   run the processes of FILE, not those of the Procfile beside run.sh
  --detach          run the swarm in the background and return

Procfile: one `name: command` per line; names are made of A-Z a-z 0-9 _ -; lines
starting with # and blank lines are skipped, except that lines starting with #> are
shown when the swarm starts. Commands run with bash -c in the Procfile's directory,
with target/release first on PATH, and SWARM_DIR set to a directory that start
empties: what lives there (rings, cursors) lasts one run of the swarm, across restarts.

Environment (durations in seconds, fractions allowed):
  RESTART_DELAY=0.2 wait this long before restarting a process that exited
  MIN_UPTIME=2      a process dying sooner than this after its start died quickly:
                    the k-th quick death in a row waits RESTART_DELAY * 2^(k-1);
                    a process that lived longer starts counting anew
  MAX_BACKOFF=15    the longest wait before a restart
  MAX_RESTARTS=10   give up on a process after this many quick deaths in a row
  KILL_TIMEOUT=3    on stop, SIGKILL what is still running this long after SIGTERM
  RUN_DIR=run       where the state lives (pid file, status files, SWARM_DIR=RUN_DIR/swarm),
  LOG_DIR=logs      and where the NAME.log files go; by default both are in the
                    directory of run.sh
EOF
}

# Where messages go: stderr, which the supervisor moves to another descriptor (see supervise).
msg_fd=2

die() {
	printf 'run.sh: %s\n' "$*" >&"$msg_fd"
	exit 1
}

usage_error() {
	printf 'run.sh: %s\nTry ./run.sh --help\n' "$*" >&"$msg_fd"
	exit 2
}

# Supervisor messages, shown like process output but on stderr.
say() {
	printf 'run.sh | %s\n' "$*" >&"$msg_fd"
}

if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
	die "needs bash 5.1 or newer (this is $BASH_VERSION)"
fi

REPO_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$REPO_DIR/$(basename -- "${BASH_SOURCE[0]}")"
NAME_RE='^[A-Za-z0-9_-]+$'
# How long the supervisor blocks at most when no restart is due, in microseconds (see the
# main loop in supervise: it bounds the delay of an exit that `wait -n` did not report).
SAFETY_WAKE_US=2000000

absolute() {
	if [[ $1 == /* ]]; then echo "$1"; else echo "$2/$1"; fi
}

RUN_DIR=$(absolute "${RUN_DIR:-$REPO_DIR/run}" "$PWD")
LOG_DIR=$(absolute "${LOG_DIR:-$REPO_DIR/logs}" "$PWD")
TARGET_DIR=$(absolute "${CARGO_TARGET_DIR:-target}" "$REPO_DIR")
SWARM_DIR=$RUN_DIR/swarm
export RUN_DIR LOG_DIR SWARM_DIR

# Prints the seconds $2 ("3", "0.2") of setting $1 as integer microseconds.
seconds_to_us() {
	[[ $2 =~ ^([0-9]{1,9})(\.([0-9]*))?$ ]] || usage_error "$1 must be a number of seconds, got '$2'"
	local fraction="${BASH_REMATCH[3]}000000"
	echo $((10#${BASH_REMATCH[1]} * 1000000 + 10#${fraction:0:6}))
}

restart_delay_us=$(seconds_to_us RESTART_DELAY "${RESTART_DELAY:-0.2}")
min_uptime_us=$(seconds_to_us MIN_UPTIME "${MIN_UPTIME:-2}")
max_backoff_us=$(seconds_to_us MAX_BACKOFF "${MAX_BACKOFF:-15}")
kill_timeout_us=$(seconds_to_us KILL_TIMEOUT "${KILL_TIMEOUT:-3}")
max_restarts=${MAX_RESTARTS:-10}
[[ $max_restarts =~ ^[0-9]{1,9}$ ]] || usage_error "MAX_RESTARTS must be a whole number, got '$max_restarts'"

# Microseconds since the epoch.
now_us() {
	now=${EPOCHREALTIME//[.,]/}
}

# The supervisor sets its results in variables rather than printing them for $(...):
# a command substitution forks, and a fork killed by the terminal's Ctrl-C would fail
# the command that used it.

# Sets duration to $1 microseconds in words: "1.25s", "4m05s", "2h07m", "3d04h".
set_duration() {
	local s=$(($1 / 1000000))
	if ((s < 60)); then
		printf -v duration '%d.%02ds' "$s" $(($1 % 1000000 / 10000))
	elif ((s < 3600)); then
		printf -v duration '%dm%02ds' $((s / 60)) $((s % 60))
	elif ((s < 86400)); then
		printf -v duration '%dh%02dm' $((s / 3600)) $((s % 3600 / 60))
	else
		printf -v duration '%dd%02dh' $((s / 86400)) $((s % 86400 / 3600))
	fi
}

# Signal names by number, from the "1) SIGHUP 2) SIGINT ..." of `kill -l`.
declare -a signal_names=() signal_words=()
read -ra signal_words -d '' <<<"$(kill -l)" || true
for ((i = 0; i + 1 < ${#signal_words[@]}; i += 2)); do
	signal_names[${signal_words[i]%)}]=${signal_words[i + 1]}
done

# Sets reason to the status $1 that `wait` gave for a process, in words.
set_exit_reason() {
	if (($1 > 128)); then
		reason="killed by ${signal_names[$1 - 128]:-signal $(($1 - 128))}"
	else
		reason="exit code $1"
	fi
}

# Sets proc_state (R, S, Z...) and proc_start (clock ticks after boot) from /proc/PID/stat.
# The pid and the start time together name a process even if its pid gets reused later.
proc_stat() {
	local line fields
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	read -ra fields <<<"${line##*) }"
	proc_state=${fields[0]}
	proc_start=${fields[19]}
}

# Succeeds while process $1, started at $2 (as proc_stat tells), runs and is no zombie.
is_alive() {
	proc_stat "$1" && [[ $proc_state != Z && $proc_start == "$2" ]]
}

# Finds the supervisor running for RUN_DIR: sets supervisor (its pid), supervisor_start,
# supervisor_since (its start time, from /proc and from the clock) and
# supervisor_kill_timeout_us (its KILL_TIMEOUT); fails if none runs.
find_supervisor() {
	read -r supervisor supervisor_start supervisor_since supervisor_kill_timeout_us 2>/dev/null \
		<"$RUN_DIR/supervisor.pid" && is_alive "$supervisor" "$supervisor_start"
}

declare -a names=() notes=()
declare -A commands=()

parse_procfile() {
	local file=$1 line number=0 name
	local skip_re='^[[:space:]]*(#.*)?$'
	local entry_re='^[[:space:]]*([A-Za-z0-9_-]+):[[:space:]]*(.*[^[:space:]])[[:space:]]*$'
	[[ -f $file ]] || die "Procfile not found: $file"
	while IFS= read -r line || [[ -n $line ]]; do
		number=$((number + 1))
		line=${line%$'\r'}
		if [[ $line == '#>'* ]]; then
			line=${line#'#>'}
			notes+=("${line# }")
			continue
		fi
		[[ $line =~ $skip_re ]] && continue
		[[ $line =~ $entry_re ]] || die "$file:$number: expected 'name: command', got: $line"
		name=${BASH_REMATCH[1]}
		[[ -z ${commands[$name]+set} ]] || die "$file:$number: process '$name' is defined twice"
		names+=("$name")
		commands[$name]=${BASH_REMATCH[2]}
	done <"$file"
	((${#names[@]} > 0)) || die "no processes in $file (expected lines like 'name: command')"
}

build() {
	say "building the workspace: cargo build --release --workspace --bins"
	say "(the first build compiles every dependency and takes several minutes; later ones take seconds)"
	(cd "$REPO_DIR" && cargo build --release --workspace --bins) || die "the build failed"
}

# Supervisor state, one entry per process name.
declare -A pids=() started_us=() started_at=() restarts=() quick_deaths=() state=()
declare -A last_exit=() exited_at=() restart_at_us=() leftover_group=()
declare -A name_of_pid=() # running process -> its name
declare -A reader_pids=() # output readers (prefix_output) still running
declare -A tick_until=()  # running `sleep` -> when it ends (µs since the epoch)
stop_signal=''
fifo_count=0 # FIFOs made so far, one per process start

# Replaces RUN_DIR/procs/NAME in one step (mv), so `status` never reads half a file.
# A failure to write (full disk...) must not bring the supervisor down.
write_state() {
	local name=$1 file="$RUN_DIR/procs/$1"
	{
		printf 'pid=%s\nstarted=%s\nrestarts=%s\nstate=%s\nlast_exit=%s\nexited=%s\nrestart_at=%s\n' \
			"${pids[$name]}" "${started_at[$name]}" "${restarts[$name]}" "${state[$name]}" \
			"${last_exit[$name]}" "${exited_at[$name]}" "${restart_at_us[$name]}" \
			>"$RUN_DIR/procs/.$name.tmp" &&
			mv -f "$RUN_DIR/procs/.$name.tmp" "$file"
	} || say "cannot write $file"
}

# Copies lines from stdin, the FIFO $2, to the log of process $1 and, prefixed with "$1 | ",
# to stdout. Runs until every process holding the other end of the FIFO has closed it.
# Opening a FIFO to read returns once a writer has opened it too, so by now both ends are
# open and its name can go: nobody else ever reads this pipe.
prefix_output() {
	local name=$1 line
	trap '' PIPE
	rm -f -- "$2" || true
	exec 3>>"$LOG_DIR/$name.log"
	while IFS= read -r line || [[ -n $line ]]; do
		printf '%s\n' "$line" >&3 || true
		printf '%s | %s\n' "$name" "$line" 2>/dev/null || true
	done
}

# INT, TERM and HUP ask the supervisor to stop everything.
catch_stop_signals() {
	trap 'stop_signal=INT' INT
	trap 'stop_signal=TERM' TERM
	trap 'stop_signal=HUP' HUP
}

start_process() {
	local name=$1 fifo pid
	if [[ -n ${leftover_group[$name]} ]]; then
		kill -KILL -- "-${leftover_group[$name]}" 2>/dev/null || true
		leftover_group[$name]=''
	fi
	# Each start gets a FIFO of its own. With one per name, the reader of the previous run,
	# still draining what that run left in the pipe, and the new reader would read the same
	# pipe at once and tear each other's lines apart.
	fifo_count=$((fifo_count + 1))
	fifo="$RUN_DIR/fifos/$name.$fifo_count"
	if mkfifo -- "$fifo" 2>/dev/null; then
		# The reader gets the terminal's Ctrl-C like the supervisor, yet has to outlive the
		# process to log its last words: it is born with SIGINT and SIGHUP ignored.
		trap '' INT HUP
		# shellcheck disable=SC2094 # the reader only removes the FIFO's name, see prefix_output
		prefix_output "$name" "$fifo" <"$fifo" {msg_fd}>&- &
		reader_pids[$!]=$name
		catch_stop_signals
	else
		say "cannot create a pipe in $RUN_DIR/fifos for $name's output;" \
			"this run of $name writes to $LOG_DIR/$name.log only"
		fifo="$LOG_DIR/$name.log"
	fi
	# A background job ignores SIGINT and SIGQUIT; give them back before setsid starts
	# a new session (and process group) whose leader is this very pid.
	(
		trap - INT QUIT
		exec setsid "$BASH" -c "${commands[$name]}"
	) </dev/null >>"$fifo" 2>&1 {msg_fd}>&- &
	pid=$!
	pids[$name]=$pid
	name_of_pid[$pid]=$name
	now_us
	started_us[$name]=$now
	started_at[$name]=$EPOCHREALTIME
	state[$name]=running
	restart_at_us[$name]=''
	write_state "$name"
	say "$name started (pid $pid)"
}

# Process $1 exited with wait status $2: schedule its restart or give up on it.
handle_exit() {
	local name=$1 status=$2 pid=${pids[$1]} uptime lived delay k reason duration
	now_us
	uptime=$((now - started_us[$name]))
	unset "name_of_pid[$pid]"
	pids[$name]=''
	# Whatever the process left behind in its group gets SIGTERM now, SIGKILL on restart.
	kill -TERM -- "-$pid" 2>/dev/null || true
	leftover_group[$name]=$pid
	set_exit_reason "$status"
	last_exit[$name]=$reason
	exited_at[$name]=$now
	if ((uptime < min_uptime_us)); then
		quick_deaths[$name]=$((quick_deaths[$name] + 1))
	else
		quick_deaths[$name]=0
	fi
	restart_at_us[$name]=''
	if ((quick_deaths[$name] > 0 && quick_deaths[$name] >= max_restarts)); then
		state[$name]=given-up
		say "GIVING UP on $name: it died within MIN_UPTIME ${quick_deaths[$name]} times in a row" \
			"(last: ${last_exit[$name]}); the other processes keep running"
	else
		delay=$restart_delay_us
		for ((k = 1; k < quick_deaths[$name]; k++)); do
			delay=$((delay * 2))
			if ((delay >= max_backoff_us)); then
				delay=$max_backoff_us
				break
			fi
		done
		restart_at_us[$name]=$((now + delay))
		state[$name]=restarting
		set_duration "$uptime"
		lived=$duration
		set_duration "$delay"
		say "$name exited ($reason) after $lived; restarting in $duration"
	fi
	write_state "$name"
}

# `wait -n` misses a process that bash already reported as killed by a signal it cannot
# trap (SIGKILL, SIGSEGV...): catch the processes that are gone but still marked running.
# Bash has reaped them and keeps their status for `wait PID`.
handle_missed_exits() {
	local name status
	for name in "${names[@]}"; do
		if [[ -n ${pids[$name]} ]] && ! kill -0 "${pids[$name]}" 2>/dev/null; then
			status=0
			wait "${pids[$name]}" || status=$?
			handle_exit "$name" "$status"
		fi
	done
}

# Restarts the processes whose time has come; forgets the process groups of dead
# processes once they are empty, so that their ids are never signalled after reuse.
restart_due_processes() {
	local name
	now_us
	for name in "${names[@]}"; do
		if [[ -n ${leftover_group[$name]} ]] && ! kill -0 -- "-${leftover_group[$name]}" 2>/dev/null; then
			leftover_group[$name]=''
		fi
		if [[ ${state[$name]} == restarting ]] && ((now >= restart_at_us[$name])); then
			restarts[$name]=$((restarts[$name] + 1))
			start_process "$name"
		fi
	done
}

# Succeeds while any of the given process groups has a member, zombies included.
any_group_alive() {
	local group
	for group; do
		if kill -0 -- "-$group" 2>/dev/null; then return 0; fi
	done
	return 1
}

signal_groups() {
	local signal=$1 group
	shift
	for group; do
		kill "-$signal" -- "-$group" 2>/dev/null || true
	done
}

# Polls until none of the given pids or process groups exists, or until $1 (in µs) passes.
wait_until_gone() {
	local deadline=$1 kind=$2
	shift 2
	while :; do
		if [[ $kind == groups ]]; then
			any_group_alive "$@" || return 0
		else
			any_pid_alive "$@" || return 0
		fi
		now_us
		((now < deadline)) || return 1
		sleep 0.05
	done
}

any_pid_alive() {
	local pid
	for pid; do
		if kill -0 "$pid" 2>/dev/null; then return 0; fi
	done
	return 1
}

# The process groups of all processes, running ones and the remains of dead ones.
all_groups() {
	local name
	groups=()
	for name in "${names[@]}"; do
		if [[ -n ${pids[$name]} ]]; then groups+=("${pids[$name]}"); fi
		if [[ -n ${leftover_group[$name]} ]]; then groups+=("${leftover_group[$name]}"); fi
	done
}

# Makes sure `wait -n` returns by $1 (µs since the epoch): starts a `sleep` ending then,
# unless one ends by then already. A sleep that ends later is left to run out: its exit
# only wakes the loop once more, which costs less than killing it.
wake_by() {
	local due=$1 tick seconds
	now_us
	for tick in "${!tick_until[@]}"; do
		# (a sleep that is gone without `wait -n` telling, if someone killed it, is forgotten)
		if ((tick_until[$tick] < now)) && ! kill -0 "$tick" 2>/dev/null; then
			unset "tick_until[$tick]"
		elif ((tick_until[$tick] <= due)); then
			return 0
		fi
	done
	if ((due < now)); then due=$now; fi
	printf -v seconds '%d.%06d' $(((due - now) / 1000000)) $(((due - now) % 1000000))
	sleep "$seconds" {msg_fd}>&- &
	tick_until[$!]=$due
}

# Sets due to the time of the earliest restart (µs since the epoch), or to $1 if none is
# due sooner.
set_next_wake() {
	local name
	due=$1
	for name in "${names[@]}"; do
		if [[ ${state[$name]} == restarting ]] && ((restart_at_us[$name] < due)); then
			due=${restart_at_us[$name]}
		fi
	done
}

# Runs if the supervisor dies of an unexpected error: leave no process behind.
abort() {
	local groups
	all_groups
	signal_groups KILL "${groups[@]}"
	say "the supervisor failed (see $RUN_DIR/supervisor.stderr); killed every process"
}

stop_all() {
	local name groups status reason readers=("${!reader_pids[@]}")
	trap '' INT TERM HUP
	all_groups
	say "got SIG$stop_signal: sending SIGTERM to every process group"
	signal_groups TERM "${groups[@]}"
	now_us
	if ! wait_until_gone $((now + kill_timeout_us)) groups "${groups[@]}"; then
		say "sending SIGKILL to what is still running after KILL_TIMEOUT"
		signal_groups KILL "${groups[@]}"
		now_us
		wait_until_gone $((now + 1000000)) groups "${groups[@]}" ||
			say "some processes were still there 1s after SIGKILL"
	fi
	for name in "${names[@]}"; do
		if [[ -n ${pids[$name]} ]]; then
			# Only a process caught before its setsid can still be there: it had no group.
			kill -KILL "${pids[$name]}" 2>/dev/null || true
			status=0
			wait "${pids[$name]}" || status=$?
			set_exit_reason "$status"
			last_exit[$name]=$reason
			pids[$name]=''
		fi
		if [[ ${state[$name]} != given-up ]]; then state[$name]=stopped; fi
		write_state "$name"
	done
	# The output readers end once every writer is gone; do not wait for them forever.
	now_us
	if ! wait_until_gone $((now + 1000000)) pids "${readers[@]}"; then
		kill -TERM "${readers[@]}" 2>/dev/null || true
	fi
	if ((${#tick_until[@]} > 0)); then kill "${!tick_until[@]}" 2>/dev/null || true; fi
	wait
	rm -rf "$RUN_DIR/supervisor.pid" "$RUN_DIR/fifos"
	trap - EXIT
	say "stopped"
}

supervise() {
	local name exited status due note
	refuse_if_running
	mkdir -p "$RUN_DIR" "$LOG_DIR"
	rm -rf "$RUN_DIR/procs" "$RUN_DIR/fifos" "$SWARM_DIR"
	mkdir "$RUN_DIR/procs" "$RUN_DIR/fifos" "$SWARM_DIR"
	printf '%s\n' "${names[@]}" >"$RUN_DIR/names"
	export PATH="$TARGET_DIR/release:$PATH"
	cd "$(dirname "$procfile")"
	# Bash reports a background job killed by a signal it cannot trap (SIGKILL, SIGSEGV)
	# on its stderr, in the middle of the output ("line 12: 345 Killed ( trap ..."). Keep
	# stderr for such notices in a file and write messages to a copy of the real one.
	exec {msg_fd}>&2 2>>"$RUN_DIR/supervisor.stderr"
	for name in "${names[@]}"; do
		pids[$name]='' restarts[$name]=0 quick_deaths[$name]=0 last_exit[$name]='' leftover_group[$name]=''
		exited_at[$name]='' restart_at_us[$name]=''
	done
	proc_stat $$
	printf '%s %s %s %s\n' $$ "$proc_start" "$EPOCHREALTIME" "$kill_timeout_us" >"$RUN_DIR/supervisor.pid.tmp"
	mv -f "$RUN_DIR/supervisor.pid.tmp" "$RUN_DIR/supervisor.pid"
	# From here on, the only commands that are not bash builtins run in the background or
	# are allowed to fail: the terminal's Ctrl-C goes to them too, and kills them.
	trap abort EXIT
	catch_stop_signals
	say "supervising ${#names[@]} processes from $procfile (pid $$): ${names[*]}"
	for note in "${notes[@]}"; do
		say "$note"
	done
	say "their output follows as 'NAME | line' (also in $LOG_DIR/NAME.log); Ctrl-C stops them all;"
	say "in another terminal: ./run.sh status (who runs, restarts), ./run.sh logs [NAME]"
	for name in "${names[@]}"; do
		start_process "$name"
	done

	# Each turn handles what happened, then blocks until a child exits: a process, an output
	# reader, or a `sleep` started to end when the next restart is due. Bash does not report
	# to `wait -n` a child killed by a signal (SIGKILL...) if it noticed the death between two
	# commands before the wait: handle_missed_exits finds those, and so that one dying in the
	# instant between that check and the wait is not waited out forever, the wait never lasts
	# longer than SAFETY_WAKE_US (one `sleep` every 2 s: nothing next to the swarm's cost).
	while [[ -z $stop_signal ]]; do
		handle_missed_exits
		restart_due_processes
		now_us
		set_next_wake $((now + SAFETY_WAKE_US))
		wake_by "$due"
		exited='' status=0
		wait -n -p exited || status=$?
		if [[ -z ${exited:-} ]]; then
			continue # a trapped signal interrupted the wait
		elif [[ -n ${tick_until[$exited]:-} ]]; then
			unset "tick_until[$exited]"
		elif [[ -n ${name_of_pid[$exited]:-} ]]; then
			handle_exit "${name_of_pid[$exited]}" "$status"
		else
			unset "reader_pids[$exited]"
		fi
	done
	stop_all
}

refuse_if_running() {
	if find_supervisor; then die "already running (supervisor pid $supervisor); use ./run.sh stop"; fi
}

# Succeeds once the supervisor has written the state file of every process.
all_states_written() {
	local name
	for name in "${names[@]}"; do
		[[ -f $RUN_DIR/procs/$name ]] || return 1
	done
}

start_detached() {
	local launched deadline note
	refuse_if_running
	mkdir -p "$RUN_DIR" "$LOG_DIR"
	rm -f "$RUN_DIR/supervisor.pid"
	(
		trap - INT QUIT
		exec setsid "$BASH" "$SCRIPT" start --no-build --procfile "$procfile"
	) </dev/null >/dev/null 2>>"$LOG_DIR/run.sh.log" &
	launched=$!
	now_us
	deadline=$((now + 10000000))
	until find_supervisor && all_states_written; do
		kill -0 "$launched" 2>/dev/null || die "the supervisor did not start; see $LOG_DIR/run.sh.log"
		now_us
		((now < deadline)) || die "the supervisor did not start within 10s; see $LOG_DIR/run.sh.log"
		sleep 0.1
	done
	echo "run.sh: the swarm runs in the background (supervisor pid $supervisor)"
	for note in "${notes[@]}"; do
		echo "run.sh: $note"
	done
	echo "run.sh: see ./run.sh status, ./run.sh logs [NAME], ./run.sh stop; own messages in $LOG_DIR/run.sh.log"
}

cmd_status() {
	local running="" name key value width=4 file duration
	local pid started restarts state last_exit exited restart_at uptime
	now_us
	if find_supervisor; then
		running=1
		set_duration $((now - ${supervisor_since//[.,]/}))
		echo "supervisor: running (pid $supervisor, up $duration)"
	else
		echo "supervisor: not running"
	fi
	if [[ ! -f $RUN_DIR/names ]]; then
		echo "no processes recorded in $RUN_DIR"
	else
		mapfile -t names <"$RUN_DIR/names"
		for name in "${names[@]}"; do
			if ((${#name} > width)); then width=${#name}; fi
		done
		printf "%-${width}s  %-10s  %-7s  %-8s  %-8s  %s\n" NAME STATE PID UPTIME RESTARTS "LAST EXIT"
		for name in "${names[@]}"; do
			pid='' started='' restarts='' state='' last_exit='' exited='' restart_at=''
			file="$RUN_DIR/procs/$name"
			if [[ -f $file ]]; then
				while IFS='=' read -r key value; do
					case $key in
					pid) pid=$value ;;
					started) started=${value//[.,]/} ;;
					restarts) restarts=$value ;;
					state) state=$value ;;
					last_exit) last_exit=$value ;;
					exited) exited=$value ;;
					restart_at) restart_at=$value ;;
					esac
				done <"$file"
			fi
			uptime=-
			if [[ $state == running && -n $started ]]; then
				set_duration $((now - started))
				uptime=$duration
			fi
			# When it exited, and when a process waiting for its restart gets it.
			if [[ -n $last_exit && $exited =~ ^[0-9]+$ ]]; then
				set_duration $((now > exited ? now - exited : 0))
				last_exit+=", $duration ago"
			fi
			if [[ -n $running && $state == restarting && $restart_at =~ ^[0-9]+$ ]]; then
				if ((restart_at > now)); then
					set_duration $((restart_at - now))
					last_exit+="; restart in $duration"
				else
					last_exit+="; restart due now"
				fi
			fi
			printf "%-${width}s  %-10s  %-7s  %-8s  %-8s  %s\n" "$name" "${state:-unknown}" "${pid:--}" \
				"$uptime" "${restarts:--}" "${last_exit:--}"
		done
	fi
	[[ -n $running ]] || return 3
}

cmd_stop() {
	local pid deadline
	if ! find_supervisor; then
		echo "run.sh: no swarm is running (RUN_DIR=$RUN_DIR)"
		return 0
	fi
	pid=$supervisor
	echo "run.sh: stopping the swarm (supervisor pid $pid)"
	kill -TERM "$pid"
	now_us
	deadline=$((now + supervisor_kill_timeout_us + 10000000))
	while is_alive "$pid" "$supervisor_start"; do
		now_us
		((now < deadline)) || die "the supervisor (pid $pid) is still running"
		sleep 0.1
	done
	echo "run.sh: stopped"
}

cmd_logs() {
	local files=()
	if [[ -n $log_name ]]; then
		[[ $log_name =~ $NAME_RE ]] || usage_error "not a process name: $log_name"
		[[ -f $LOG_DIR/$log_name.log ]] || die "no log for '$log_name' in $LOG_DIR"
		files=("$LOG_DIR/$log_name.log")
	else
		shopt -s nullglob
		files=("$LOG_DIR"/*.log)
		shopt -u nullglob
		((${#files[@]} > 0)) || die "no logs in $LOG_DIR yet"
	fi
	exec tail -n 20 -F "${files[@]}"
}

command='' build=1 detach=0 procfile='' log_name=''
while (($# > 0)); do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--no-build) build=0 ;;
	--detach) detach=1 ;;
	--procfile)
		[[ -n ${2:-} ]] || usage_error "--procfile needs a FILE"
		procfile=$2
		shift
		;;
	--procfile=?*) procfile=${1#*=} ;;
	-*) usage_error "unknown option: $1" ;;
	*)
		if [[ -z $command ]]; then
			command=$1
		elif [[ $command == logs && -z $log_name ]]; then
			log_name=$1
		else
			usage_error "unexpected argument: $1"
		fi
		;;
	esac
	shift
done

case ${command:-start} in
help) usage ;;
start)
	if [[ -n $procfile ]]; then procfile=$(absolute "$procfile" "$PWD"); else procfile=$REPO_DIR/Procfile; fi
	parse_procfile "$procfile"
	# Checked before the build, which can take minutes (and checked again after it).
	refuse_if_running
	if ((build)); then build; fi
	if ((detach)); then start_detached; else supervise; fi
	;;
status | stop | logs)
	if ((!build || detach)) || [[ -n $procfile ]]; then
		usage_error "--no-build, --detach and --procfile go with start only"
	fi
	"cmd_$command"
	;;
*) usage_error "unknown command: $command" ;;
esac
