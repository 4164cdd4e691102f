-- kv.lua — the wrk scenarios of `npm run bench` (scripts/bench/wrk.ts) for both systems:
--   KV_API       edgekv | etcd
--   KV_SCENARIO  put | get | get-serializable | mix
-- put, get and get-serializable send, byte for byte and in the same random order, what the anchors' scripts
-- send (../shared/anchors/wrk/<api>-put.lua, <api>-get.lua, etcd-get-serializable.lua and edgekv-get-stale.lua:
-- edgekv's GET ?consistency=stale); mix is 90 % those gets (linearizable) and 10 % those puts, one draw for the
-- kind, a second for the key. Keys uniform over KV_KEYSPACE; key/value scheme, RNG seeding and the WRK_JSON
-- summary come from the anchors' common.lua (KV_ANCHOR_WRK is its folder).
--
-- Why not the anchors' files themselves: like them, init pre-builds one request per key per thread, so that a
-- request costs the client a table lookup during the run (the client shares 2 cores with the servers); but
-- they build each request with wrk.format and base64-encode each etcd key byte by byte, which takes 1-4 s per
-- run on this machine before the load starts (3 min of a full bench). Here wrk.format runs once, for key 0,
-- and every other request is that template with the key text swapped (all keys have the same length, so the
-- Content-Length is the same); an etcd key's base64 reuses the base64 of its prefix and of its 3-digit groups.
-- KV_VERIFY=1 also builds every request the anchors' way and stops with an error at the first difference
-- (run by test/unit/bench-wrk-script.test.ts against the anchors' files when wrk is installed).
local C = dofile((os.getenv("KV_ANCHOR_WRK") or "../shared/anchors/wrk") .. "/common.lua")
local api = os.getenv("KV_API") or "edgekv"
local scenario = os.getenv("KV_SCENARIO") or "get"
local verify = os.getenv("KV_VERIFY") == "1"
if api ~= "edgekv" and api ~= "etcd" then error("KV_API must be edgekv or etcd, got " .. api) end

-- base64 of key i, as C.b64(C.key(i)) gives it
local b64key
if #C.prefix % 3 == 0 then
  local prefix64, groups = C.b64(C.prefix), {}
  local function g(s)
    local v = groups[s]
    if not v then v = C.b64(s); groups[s] = v end
    return v
  end
  b64key = function(i)
    local d = string.format("%08d", i)
    if #d ~= 8 then return C.b64(C.key(i)) end
    return prefix64 .. g(d:sub(1, 3)) .. g(d:sub(4, 6)) .. g(d:sub(7, 8))
  end
else
  b64key = function(i) return C.b64(C.key(i)) end
end

-- the anchors' request for key i of each kind (their scripts' init bodies), and the key's text in it
local anchor, keytext = {}, nil
if api == "edgekv" then
  local v = C.value()
  anchor.get = function(i) return wrk.format("GET", "/v1/kv/" .. C.key(i) .. "") end
  anchor["get-serializable"] = function(i) return wrk.format("GET", "/v1/kv/" .. C.key(i) .. "?consistency=stale") end
  anchor.put = function(i) return wrk.format("PUT", "/v1/kv/" .. C.key(i), { ["Content-Type"] = "application/octet-stream" }, v) end
  keytext = C.key
else
  local v64 = C.b64(C.value())
  anchor.get = function(i) return wrk.format("POST", C.range_path, C.headers, '{"key":"' .. C.b64(C.key(i)) .. '"}') end
  anchor["get-serializable"] = function(i) return wrk.format("POST", C.range_path, C.headers, '{"key":"' .. C.b64(C.key(i)) .. '","serializable":true}') end
  anchor.put = function(i) return wrk.format("POST", C.put_path, C.headers, '{"key":"' .. C.b64(C.key(i)) .. '","value":"' .. v64 .. '"}') end
  keytext = b64key
end

-- requests 1..keyspace of one kind: the template of key 0 with each key's text in place of key 0's
local function build(kind)
  local one, n, reqs = anchor[kind], C.keyspace, {}
  local t, k0 = one(0), keytext(0)
  local at = t:find(k0, 1, true)
  local how = "template"
  if n > 100000000 or not at or t:find(k0, at + 1, true) then
    how = "anchors' way" -- keys of unequal length, or the key text not once in the request
    for i = 0, n - 1 do reqs[i + 1] = one(i) end
  else
    local pre, post = t:sub(1, at - 1), t:sub(at + #k0)
    for i = 0, n - 1 do reqs[i + 1] = pre .. keytext(i) .. post end
  end
  if verify then
    for i = 0, n - 1 do
      local want = one(i)
      if reqs[i + 1] ~= want then error(string.format("kv.lua: %s %s request of key %d differs from the anchors':\n%q\n%q", api, kind, i, reqs[i + 1], want)) end
    end
    io.write(string.format("KV_VERIFY %s %s: %d requests identical (built by %s)\n", api, kind, n, how))
  end
  return reqs
end

local gets, puts, n
setup = C.setup
function init(args)
  C.seed_rng()
  n = C.keyspace
  if scenario == "mix" then
    gets, puts = build("get"), build("put")
  elseif anchor[scenario] then
    gets = build(scenario)
  else
    error("KV_SCENARIO must be put, get, get-serializable or mix, got " .. scenario)
  end
end
if scenario == "mix" then
  function request()
    if math.random(10) == 1 then return puts[math.random(n)] end
    return gets[math.random(n)]
  end
else
  function request() return gets[math.random(n)] end
end
-- KV_THINK_MS (optional, ms > 0): each connection waits a random time with this mean (exponential) before each
-- request (wrk's delay hook), so that the load is below what the system can take and latency is compared at an
-- offered rate instead of at saturation. The draws share the RNG with the key choice, so with a think time the
-- key order is no longer the anchors'.
local think = tonumber(os.getenv("KV_THINK_MS") or "")
if think and think > 0 then
  function delay() return math.floor(-math.log(1 - math.random()) * think + 0.5) end
end
done = C.done
