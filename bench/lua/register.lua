-- POST /api/v1/users with a unique email per request: a per-run nonce (the first script
-- argument), wrk's thread id and a per-thread counter. The second argument is the password.
--   wrk -s register.lua URL -- <nonce> <password>
local nonce, password = "run", "bench-password"
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  nonce = args[1] or tostring(os.time())
  password = args[2] or password
end

function request()
  counter = counter + 1
  local email = string.format("reg-%s-t%d-%d@example.com", nonce, thread_id or 1, counter)
  local body = string.format(
    '{"email":"%s","password":"%s","full_name":"Bench Register"}', email, password)
  return wrk.format("POST", "/api/v1/users", headers, body)
end
