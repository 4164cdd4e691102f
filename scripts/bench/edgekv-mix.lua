-- edgekv-mix.lua — wrk scenario for edgekv's v1 API: 90 % linearizable GET /v1/kv/<key>, 10 % PUT of a
-- 256-byte value, keys uniform over KV_KEYSPACE. Reuses the anchors' key/value scheme: KV_ANCHOR_WRK is
-- the folder of the anchors' common.lua (set by scripts/bench.ts).
local C = dofile((os.getenv("KV_ANCHOR_WRK") or "../shared/anchors/wrk") .. "/common.lua")
local gets, puts, n
setup = C.setup
function init(args)
  C.seed_rng()
  local v = C.value()
  gets, puts = {}, {}
  for i = 0, C.keyspace - 1 do
    gets[i + 1] = wrk.format("GET", "/v1/kv/" .. C.key(i))
    puts[i + 1] = wrk.format("PUT", "/v1/kv/" .. C.key(i), { ["Content-Type"] = "application/octet-stream" }, v)
  end
  n = C.keyspace
end
function request()
  -- one draw decides the kind (1 in 10 is a put), a second picks the key
  if math.random(10) == 1 then return puts[math.random(n)] end
  return gets[math.random(n)]
end
done = C.done
