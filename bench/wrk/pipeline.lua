-- HTTP/1.1 pipelining for wrk: each write carries DEPTH requests
-- (default 16, `wrk ... -s pipeline.lua -- 16`); wrk counts each response.
local batch

function init(args)
  local depth = tonumber(args[1]) or 16
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format()
  end
  batch = table.concat(reqs)
end

function request()
  return batch
end
