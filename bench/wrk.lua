-- The benchmark's closed-loop HTTP load (bench/wrk.go), run by wrk: each
-- connection sends a request, waits for its answer and sends the next.
-- Arguments: mode (deposit, transfer or get), a file of account ids (one per
-- line), a bearer token, and for get a path suffix.
-- At the end it prints one JSON object for wrk.go to read.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("seed", count)
  table.insert(threads, thread)
end

local mode, ids, suffix

function init(args)
  -- Each thread its own sequence: Lua's default seed is the same for all.
  math.randomseed(os.time() * 1000 + seed)
  mode, suffix = args[1], args[4] or ""
  ids = {}
  for line in io.lines(args[2]) do
    ids[#ids + 1] = line
  end
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  if mode ~= "get" then
    wrk.headers["Content-Type"] = "application/json"
  end
  errors = {} -- read by done through thread:get
end

local function pick()
  return ids[math.random(#ids)]
end

function request()
  if mode == "deposit" then
    return wrk.format("POST", "/accounts/" .. pick() .. "/deposit", nil, '{"amount":"1.00"}')
  elseif mode == "transfer" then
    local from, to = pick(), pick()
    while to == from do
      to = pick()
    end
    return wrk.format("POST", "/transfers", nil,
      '{"from_account_id":"' .. from .. '","to_account_id":"' .. to .. '","amount":"0.01"}')
  end
  return wrk.format("GET", "/accounts/" .. pick() .. suffix)
end

function response(status, headers, body)
  if status >= 300 then
    local kind = tostring(status) .. " " .. (string.match(body or "", '"code":"([%w_]+)"') or "")
    errors[kind] = (errors[kind] or 0) + 1
  end
end

function done(summary, latency, requests)
  local sums, kinds = {}, {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("errors") or {}) do
      sums[k] = (sums[k] or 0) + n
    end
  end
  for k, n in pairs(sums) do
    kinds[#kinds + 1] = string.format('"%s":%d', k, n)
  end
  local e = summary.errors
  io.write(string.format(
    '\n{"duration_us":%d,"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"kinds":{%s}}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    table.concat(kinds, ",")))
end
