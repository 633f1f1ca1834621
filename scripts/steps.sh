# Sourced by the test scripts: `step NAME` starts a step and ends the one before; each step's
# wall time is appended to $STEP_TIMES (shared with the scripts they call), and `step_summary`
# prints them as a table at the end (also when a step fails).
STEP_TIMES=${STEP_TIMES:-$(mktemp)}
export STEP_TIMES
_step_name=""
_step_start=0
step_end() {
  if [[ -n $_step_name ]]; then
    printf '%s\t%d\n' "$_step_name" $(( $(date +%s) - _step_start )) >>"$STEP_TIMES"
  fi
  _step_name=""
}
step() {
  step_end
  _step_name=$1
  _step_start=$(date +%s)
  printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"
}
step_summary() {
  step_end
  printf '\n%-72s %8s\n' "step" "seconds"
  awk -F'\t' '{ printf "%-72s %8d\n", $1, $2; total += $2 } END { printf "%-72s %8d\n", "total", total }' "$STEP_TIMES"
}
