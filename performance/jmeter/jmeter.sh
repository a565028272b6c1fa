#!/usr/bin/env bash
# Runs JMeter with the given arguments, e.g.
#   performance/jmeter/jmeter.sh -n -t performance/jmeter/load-test.jmx -l out.jtl -Jport=8080
# $JMETER (default: `jmeter` on PATH) is run as is, unless it is Debian's packaged JMeter 2.13
# (/usr/share/jmeter), which cannot load any plan against Debian's XStream: that one is started
# through debian-jmeter-2.13.bsh, which allows JMeter's classes first (see its header).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jmeter=${JMETER:-jmeter}
home=/usr/share/jmeter
if [[ -z ${JMETER:-} && -f $home/bin/ApacheJMeter.jar && -f /usr/share/java/bsh.jar ]] &&
  [[ $(readlink -f "$(command -v jmeter || true)") == "$home"/bin/jmeter ]]; then
  exec java -Djmeter.home="$home" \
    -cp "$home/bin/ApacheJMeter.jar:$home/lib/jorphan.jar:$home/lib/ext/*:/usr/share/java/bsh.jar" \
    bsh.Interpreter "$here/debian-jmeter-2.13.bsh" "$@"
fi
exec "$jmeter" "$@"
