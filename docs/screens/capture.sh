#!/bin/sh
# Regenerates the text screen captures in this folder from the real binary inside tmux.
# Usage: BIN=target/debug/tiny-backspace docs/screens/capture.sh
set -eu
BIN=$(realpath "${BIN:-target/debug/tiny-backspace}")
OUT=$(cd "$(dirname "$0")" && pwd)
W=/tmp/tb-demo
rm -rf "$W"; mkdir -p "$W"
N=0
trap 'tmux -S "$W/sock.$N" kill-server 2>/dev/null || true' EXIT

mkdir -p "$W/calc/calc"
cd "$W/calc"
{
  printf 'def divide(a, b):\n    return a / b\n'
  i=0; while [ $i -lt 20 ]; do printf '\n\ndef f%d(x):\n    return x + %d\n' $i $i; i=$((i+1)); done
  printf '\n\ndef mul(a, b):\n    return a * b\n'
} > calc/__init__.py
echo '# calc' > README.md
git init -q -b main && git add . && git -c user.name=t -c user.email=t@t commit -qm init
cd "$W"
cat > script.json <<'JSON'
{"turns": [
  {"text": "I'll look at the entry point first.",
   "tool_calls": [{"name": "read_file", "input": {"path": "calc/__init__.py"}}]},
  {"delay_ms": 2500, "text": "divide() should raise ValueError for a zero divisor; adding the check.",
   "tool_calls": [
    {"name": "edit_file", "input": {"path": "calc/__init__.py", "old_str": "def divide(a, b):\n    return a / b",
      "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b if b else None"}},
    {"name": "edit_file", "input": {"path": "calc/__init__.py", "old_str": "    return a * b", "new_str": "    # product of a and b\n    return a * b"}},
    {"name": "write_file", "input": {"path": "NOTES.md", "content": "# Notes\ndivide() rejects a zero divisor.\n"}},
    {"name": "bash", "input": {"command": "python3 -c 'import calc; print(calc.divide(6, 3))'"}}]},
  {"text": "Make divide reject a zero divisor\n\ndivide() now raises ValueError when the divisor is 0; NOTES.md records it."}
]}
JSON

t() { tmux -S "$W/sock.$N" "$@"; }
cap() { sleep "${2:-0.6}"; t capture-pane -p -t s > "$OUT/$1.txt"; }
# Waits (up to 60 s) until the screen shows $1.
until_shown() {
  n=0
  until t capture-pane -p -t s | grep -qF -- "$1"; do
    n=$((n+1)); [ $n -lt 600 ] || { echo "timed out waiting for: $1" >&2; exit 1; }
    sleep 0.1
  done
}
start() {
  # A fresh server per app: reusing a socket right after kill-server races its shutdown.
  t kill-server 2>/dev/null || true
  N=$((N+1))
  t new-session -d -s s -x "${COLS:-100}" -y "${ROWS:-30}" -c "$W" \
    "TB_HOME=$W/home TB_CONFIG=$W/none.toml $BIN $*; sleep 60"
  sleep 1
}

start --repo "$W/calc" --prompt "'Make divide reject a zero divisor'" --model scripted:script.json
cap 01-start
t send-keys -t s C-s
until_shown "Read calc/__init__.py"
cap 02-running 0.3
until_shown "3 of 3 hunks"
cap 03-review
t send-keys -t s ']' n n Space
until_shown "2 of 3 hunks"
cap 04-review-one-hunk-out
# The same screen with its colors (view with `cat` in a terminal).
t capture-pane -e -p -t s > "$OUT/04-review-one-hunk-out.ansi"
t send-keys -t s '?'
cap 05-help
t send-keys -t s Escape; sleep 0.3; t send-keys -t s c
cap 06-pr-dialog
t send-keys -t s C-s
until_shown "Esc close"
cap 07-published-branch
t send-keys -t s Escape; sleep 0.3; t send-keys -t s C-r
cap 08-runs-list

start --repo "$W/calc" --base no-such-branch --prompt "'Make divide reject a zero divisor'" --model scripted:script.json
t send-keys -t s C-s
until_shown "The run failed"
cap 09-error
start --repo "''" --prompt "''" --model scripted:script.json
t send-keys -t s C-s
cap 10-validation
COLS=80 ROWS=24 start --repo "$W/calc" --prompt "'Make divide reject a zero divisor'" --model scripted:script.json
t send-keys -t s C-s
# At 80 columns the diff title is the short one.
until_shown "3/3 hunks"
t send-keys -t s ']' n n Space
until_shown "2/3 hunks"
cap 11-review-80x24
t resize-window -t s -x 50 -y 12 2>/dev/null || true
cap 12-too-small
