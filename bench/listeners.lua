-- wrk script for bench/service.py: who the stream's requests come from.
--
--   wrk -s bench/listeners.lua URL -- AGENT new   every request a new listener
--   wrk -s bench/listeners.lua URL -- AGENT same  every request the same listener
--
-- All requests come from 127.0.0.1 and the service trusts no X-Forwarded-For
-- (NUM_PROXIES=0, as when gunicorn faces clients itself), so what tells listeners
-- apart is the User-Agent: "AGENT-<thread>-<n>" for a new one, "AGENT" for the same.
-- Other headers (-H "Range: ...") are sent as given. At the end it prints
-- "requests sent: N", every request written, answered or not.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   agent, who = args[1], args[2]
   sent = 0
end

function request()
   sent = sent + 1
   if who == "new" then
      wrk.headers["User-Agent"] = agent .. "-" .. id .. "-" .. sent
   else
      wrk.headers["User-Agent"] = agent
   end
   return wrk.format()
end

function done(summary, latency, requests)
   -- wrk asks the first thread's script for one request before starting, to check
   -- it (script_verify_request), and never sends that one.
   local total = -1
   for _, thread in ipairs(threads) do
      total = total + thread:get("sent")
   end
   io.write(string.format("requests sent: %d\n", total))
end
