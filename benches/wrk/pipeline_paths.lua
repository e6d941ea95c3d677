-- 16 pipelined requests in every write, cycling through 4,096 distinct paths (256 batches).
-- wrk -s benches/wrk/pipeline_paths.lua URL
local batches = {}
init = function(args)
  for b = 0, 255 do
    local r = {}
    for i = 1, 16 do
      r[i] = wrk.format(nil, "/p/" .. (b * 16 + i))
    end
    batches[b + 1] = table.concat(r)
  end
end
local n = 0

request = function()
  n = n % 256 + 1
  return batches[n]
end
