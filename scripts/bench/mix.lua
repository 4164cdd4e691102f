-- mix.lua — wrk scenario "90/10 get/put" for either system, chosen by KV_API (set by scripts/bench/wrk.ts):
--   KV_API=edgekv  90 % linearizable GET /v1/kv/<key>, 10 % PUT /v1/kv/<key> with the raw 256-byte value;
--   KV_API=etcd    90 % linearizable range of one key, 10 % put, through etcd's v3 JSON gateway (base64).
-- Keys uniform over KV_KEYSPACE; the key/value scheme and the WRK_JSON summary are the anchors' common.lua
-- (KV_ANCHOR_WRK is its folder), so both systems see the same keys, values and request mix.
local C = dofile((os.getenv("KV_ANCHOR_WRK") or "../shared/anchors/wrk") .. "/common.lua")
local api = os.getenv("KV_API") or "edgekv"
local gets, puts, n
setup = C.setup
function init(args)
  C.seed_rng()
  local v = C.value()
  if api == "etcd" then
    local v64 = C.b64(v)
    gets = C.build(C.range_path, function(k) return '{"key":"' .. k .. '"}' end)
    puts = C.build(C.put_path, function(k) return '{"key":"' .. k .. '","value":"' .. v64 .. '"}' end)
  elseif api == "edgekv" then
    gets, puts = {}, {}
    for i = 0, C.keyspace - 1 do
      gets[i + 1] = wrk.format("GET", "/v1/kv/" .. C.key(i))
      puts[i + 1] = wrk.format("PUT", "/v1/kv/" .. C.key(i), { ["Content-Type"] = "application/octet-stream" }, v)
    end
  else
    error("KV_API must be edgekv or etcd, got " .. api)
  end
  n = C.keyspace
end
function request()
  -- one draw decides the kind (1 in 10 is a put), a second picks the key
  if math.random(10) == 1 then return puts[math.random(n)] end
  return gets[math.random(n)]
end
done = C.done
