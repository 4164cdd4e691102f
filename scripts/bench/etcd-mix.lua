-- etcd-mix.lua — wrk scenario for etcd's v3 JSON gateway: 90 % linearizable range of one key, 10 % put of
-- a 256-byte value, keys uniform over KV_KEYSPACE; same scheme as the anchors' etcd-get/etcd-put.
-- KV_ANCHOR_WRK is the folder of the anchors' common.lua (set by scripts/bench.ts).
local C = dofile((os.getenv("KV_ANCHOR_WRK") or "../shared/anchors/wrk") .. "/common.lua")
local gets, puts, n
setup = C.setup
function init(args)
  C.seed_rng()
  local v = C.b64(C.value())
  gets = C.build(C.range_path, function(k) return '{"key":"' .. k .. '"}' end)
  puts = C.build(C.put_path, function(k) return '{"key":"' .. k .. '","value":"' .. v .. '"}' end)
  n = C.keyspace
end
function request()
  if math.random(10) == 1 then return puts[math.random(n)] end
  return gets[math.random(n)]
end
done = C.done
