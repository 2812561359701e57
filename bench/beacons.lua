-- wrk script for bench/listens.py: listeners who start a listen, then report it.
--
--   wrk -s bench/beacons.lua STREAM_URL -- AGENT start LISTENERS
--       each request a new listener "AGENT-<thread>-<n>" streams the clip's first
--       4 KB (a counted listen); each thread stops after LISTENERS answers and
--       says so ("listeners started"): wrk itself runs on until its -d is over
--       or it is sent SIGINT, which bench/listens.py does once both have said it
--   wrk -s bench/beacons.lua LISTENS_URL -- AGENT beacon LISTENERS RATE FROM SECONDS
--       the same listeners, in turn, POST their progress as navigator.sendBeacon
--       does (text/plain), RATE requests a second in all; each reports the next
--       tenth of the stream's window (SECONDS long, starting at FROM on the
--       clip's timeline) it heard. At the end: "status <code>: <count>" lines
--
-- Beacons keep to a schedule: each thread's next request waits for its next
-- slot (RATE / threads a second), whichever of its connections is free. When
-- the server is slower than the schedule, connections wait on answers and the
-- rate held falls below RATE: the figure to read. wrk's latency of a request
-- starts when it is written, after its wait.
--
-- wrk asks thread 1's script for one request before starting, to check it, and
-- never sends that one: thread 1's listener 1 never starts a listen, so beacons
-- come from listeners 2 to LISTENERS of every thread.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } clips_timespec;
int clock_gettime(int clock, clips_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("clips_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   agent, mode, listeners = args[1], args[2], tonumber(args[3])
   sent, answered = 0, 0
   if mode == "start" then
      wrk.method = "GET"
      wrk.headers["Range"] = "bytes=0-4095"
   else
      wrk.method = "POST"
      wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
      interval = 1000 * #threads / tonumber(args[4])
      from, tenth = tonumber(args[5]), tonumber(args[6]) / 10
      slot = now_ms()
   end
   statuses = {}
end

function request()
   sent = sent + 1
   if mode == "start" then
      wrk.headers["User-Agent"] = agent .. "-" .. id .. "-" .. sent
      return wrk.format()
   end
   -- Listeners 2..LISTENERS in turn; each reports the next tenth it heard.
   local turn = (sent - 1) % (listeners - 1)
   local round = math.floor((sent - 1) / (listeners - 1)) % 10
   wrk.headers["User-Agent"] = agent .. "-" .. id .. "-" .. (turn + 2)
   local body = string.format(
      '{"heard": [[%.2f, %.2f]]}', from + round * tenth, from + (round + 1) * tenth
   )
   return wrk.format(nil, nil, nil, body)
end

function delay()
   if mode == "start" then
      return 0
   end
   slot = math.max(slot + interval, now_ms())
   return math.max(0, slot - now_ms())
end

function response(status, headers, body)
   answered = answered + 1
   statuses[status] = (statuses[status] or 0) + 1
   if mode == "start" and answered == listeners then
      io.write("listeners started\n")
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
   end
   for status, count in pairs(counts) do
      io.write(string.format("status %d: %d\n", status, count))
   end
end
