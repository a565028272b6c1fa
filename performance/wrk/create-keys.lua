-- wrk script of performance/keys.sh: POST /admin/v1/keys, each request making a key of its own
-- name (KEY_PREFIX-1, KEY_PREFIX-2, ...), with the admin token ADMIN_TOKEN. Run it with -t1 -c1
-- (one key after another over one keep-alive connection) for wrk's -d; at the end it prints one
-- line "WRKJSON {...}" with the keys made (answers 201), the other answers, the socket errors
-- and the run's duration in microseconds.
local prefix = os.getenv("KEY_PREFIX") or "made"
local token = os.getenv("ADMIN_TOKEN") or ""
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}

local the_thread
function setup(thread)
  the_thread = thread
end

-- Globals: done() reads them from the thread.
sent, made, other = 0, 0, 0

function request()
  sent = sent + 1
  return wrk.format("POST", "/admin/v1/keys", headers,
                    string.format('{"name":"%s-%d"}', prefix, sent))
end

function response(status)
  if status == 201 then made = made + 1 else other = other + 1 end
end

function done(summary)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"made":%d,"other":%d,"duration_us":%d,"socket_errors":%d}\n',
    the_thread:get("made"), the_thread:get("other"), summary.duration,
    e.connect + e.read + e.write + e.timeout))
end
