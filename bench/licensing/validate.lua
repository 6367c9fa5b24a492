-- wrk script: POST /api/v1/licenses/validate (or the path given second, e.g. the heartbeat's)
-- with a random seeded (key, fingerprint, ip) line. Each machine keeps its own IP
-- (X-Forwarded-For, believed from the trusted local proxy), as in real use.
-- Usage: wrk ... -s validate.lua URL -- machines.txt [/api/v1/licenses/heartbeat]
local machines = {}
local path = "/api/v1/licenses/validate"

function init(args)
  path = args[2] or path
  for line in io.lines(args[1]) do
    local key, fingerprint, ip = line:match("([^ ]+) ([^ ]+) ([^ ]+)")
    machines[#machines + 1] = {key, fingerprint, ip}
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + #tostring({}))
end

function request()
  local m = machines[math.random(#machines)]
  local body = '{"key":"' .. m[1] .. '","fingerprint":"' .. m[2] .. '","hostname":"bench","nonce":"' ..
    math.random(1, 1000000000) .. '"}'
  return wrk.format("POST", path,
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = m[3]}, body)
end
