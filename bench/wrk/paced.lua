-- Think time: each connection waits DELAY ms (default 10) after a response
-- before its next request (`wrk ... -s paced.lua -- 10`).  64 connections
-- then offer at most 6,400 req/s, below every server's capacity, so wrk is
-- never the bottleneck and the latency is the server's, not wrk's queueing.
local wait_ms

function init(args)
  wait_ms = tonumber(args[1]) or 10
end

function delay()
  return wait_ms
end
