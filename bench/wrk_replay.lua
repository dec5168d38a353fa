-- Replays the requests of bench/wrk_requests.py, one line each, in order, after the
-- first args[2] lines (sent before wrk started: bench/ceiling.py's warm-up).
local requests = {}
local next_index = 0

init = function(args)
  local path = args[1] or "bench-results/wrk-requests.tsv"
  local skip = tonumber(args[2] or "0")
  for line in io.lines(path) do
    if skip > 0 then
      skip = skip - 1
    else
      local terminal, ts, signature, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
      requests[#requests + 1] = wrk.format("POST", "/v1/validations", {
        ["X-Terminal-Id"] = terminal, ["X-Timestamp"] = ts, ["X-Signature"] = signature,
        ["Content-Type"] = "application/json"}, body)
    end
  end
end

request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
