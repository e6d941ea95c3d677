-- 16 pipelined requests for the same path in every write (wrk counts each response).
-- wrk -s benches/wrk/pipeline.lua URL
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format(nil, wrk.path)
  end
  req = table.concat(r)
end

request = function()
  return req
end
