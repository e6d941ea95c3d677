-- One request at a time over keep-alive, cycling through 4,096 distinct paths (/p/1 ... /p/4096).
-- wrk -s benches/wrk/paths.lua URL
local paths = {}
for i = 1, 4096 do
  paths[i] = "/p/" .. i
end
local n = 0

request = function()
  n = n % 4096 + 1
  return wrk.format(nil, paths[n])
end
