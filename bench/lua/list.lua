-- Cycles through requests read at init from a list file (bench/run.py writes it), one per
-- line: METHOD <TAB> PATH <TAB> BEARER TOKEN (may be empty) <TAB> JSON BODY (may be empty).
-- Every request is built once in init(), so request() costs wrk one table lookup.
--   wrk -s list.lua URL -- /path/to/list.tsv
local requests = {}
local n, i = 0, 0

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local method, path, token, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    if method ~= nil then
      local headers = {}
      if token ~= "" then headers["Authorization"] = "Bearer " .. token end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      n = n + 1
      requests[n] = wrk.format(method, path, headers, body)
    end
  end
  file:close()
  assert(n > 0, "empty request list " .. args[1])
  -- Threads start at different places in the list.
  i = (((thread_id or 1) - 1) * 7919) % n
end

function request()
  i = i % n + 1
  return requests[i]
end
