local M = {}

local config = nil
M.port = config.port

return M
