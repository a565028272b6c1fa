#!/usr/bin/env bash
# Checks monitoring/ with Prometheus's and Alertmanager's own tools (ctest -L monitoring runs it):
#   - promtool check config: prometheus.yml, the rule files it lists and targets.yml;
#   - promtool check rules, with duplicate rules an error;
#   - promtool test rules: monitoring/prometheus/tests/alert-rules.test.yml;
#   - every alert has severity critical, warning or info, a test where it fires and one where
#     it stays quiet, and a runbook: a heading of its name in docs/operations.md, which its
#     runbook_url points at;
#   - amtool check-config (templates included), where each severity is routed, and the
#     notification templates rendered on an example group (monitoring/alertmanager/tests/).
# Needs promtool and amtool (Debian's prometheus and prometheus-alertmanager: scripts/setup.sh);
# without them it fails. Runs every check and exits non-zero if any failed. No network.
set -euo pipefail
cd "$(dirname "$0")/.."

prom=monitoring/prometheus
am=monitoring/alertmanager
rules=$prom/alert-rules.yml
tests=$prom/tests/alert-rules.test.yml
runbooks=docs/operations.md

for tool in promtool amtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-monitoring.sh: $tool not found; scripts/setup.sh installs it" >&2
    exit 1
  fi
done

status=0
fail() {
  echo "check-monitoring.sh: $*" >&2
  status=1
}
step() {  # step NAME COMMAND...: runs COMMAND; its output is shown only when it fails
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok: $name"
  else
    printf '%s\n' "$out" >&2
    fail "$name failed"
  fi
}

step "promtool check config" promtool check config "$prom/prometheus.yml"
step "promtool check rules" promtool check rules --lint=all --lint-fatal "$rules"
step "promtool test rules" promtool test rules "$tests"

# "name severity runbook_url" for each alerting rule. The rules file keeps `severity:` and
# `runbook_url:` inside the rule that names them, as promtool requires.
mapfile -t alerts < <(awk '
  /^ *- alert: /    { name = $3; severity = ""; next }
  /^ *- record: /   { name = ""; next }
  name && /^ *severity: /    { severity = $2 }
  name && /^ *runbook_url: / { print name, severity, $2; name = "" }' "$rules")
# "name fires" or "name quiet" for each evaluation in the tests (`alertname:` is followed by
# `exp_alerts:`, as the header of the test file asks).
tested=$(awk '
  /^ *alertname: / { name = $2; next }
  name && /^ *exp_alerts:/ { print name, ($2 == "[]" ? "quiet" : "fires") }
  { name = "" }' "$tests")
((${#alerts[@]})) || fail "no alert found in $rules"
names=()
for alert in "${alerts[@]}"; do
  read -r name severity runbook <<<"$alert"
  names+=("$name")
  case $severity in
    critical | warning | info) ;;
    *) fail "$name: severity '$severity' is not critical, warning or info" ;;
  esac
  [[ $runbook == "$runbooks#${name,,}" ]] ||
    fail "$name: runbook_url is '$runbook', not $runbooks#${name,,}"
  grep -qx "### $name" "$runbooks" || fail "$name: $runbooks has no heading '### $name'"
  grep -qx "$name fires" <<<"$tested" || fail "$name: no test in $tests where it fires"
  grep -qx "$name quiet" <<<"$tested" || fail "$name: no test in $tests where it stays quiet"
done
while read -r name _; do
  [[ -n $name ]] || continue
  [[ " ${names[*]} " == *" $name "* ]] || fail "$tests tests $name, which $rules does not have"
done <<<"$tested"
echo "ok: ${#alerts[@]} alerting rules, each with severity, runbook and a firing and a quiet test"

step "amtool check-config" amtool check-config "$am/alertmanager.yml"
for route in critical=pager warning=chat info=ticket ""=chat; do
  severity=${route%=*} receiver=${route#*=}
  labels=(alertname=TokenRateLimiterExample)
  [[ -z $severity ]] || labels+=("severity=$severity")
  step "route ${labels[*]} -> $receiver" amtool config routes test \
    --config.file="$am/alertmanager.yml" --verify.receivers="$receiver" "${labels[@]}"
done
if rendered=$(amtool template render --template.glob="$am/notification-templates/*.tmpl" \
  --template.data="$am/tests/backend-down.json" \
  --template.text=$'{{ template "trl.title" . }}\n{{ template "trl.text" . }}' 2>&1); then
  if diff -u "$am/tests/backend-down.txt" - <<<"$rendered" >&2; then
    echo "ok: notification templates render $am/tests/backend-down.txt"
  else
    fail "the notification templates render otherwise than $am/tests/backend-down.txt"
  fi
else
  printf '%s\n' "$rendered" >&2
  fail "amtool template render failed"
fi

exit $status
