-- Uploads: every upload event records itself on req.events, and the handlers answer with
-- what they saw, so a test reads the order and the arguments from the response.
moonwire.options{
  limits = { max_body_size = 64 * 1024 },
  uploads = { dir = "uploads", max_file_size = 300 * 1024 * 1024, max_files = 4, max_fields = 8 },
}

local function note(req, ...)
  req.events = req.events or {}
  req.events[#req.events + 1] = table.concat({...}, "|")
end

function OnHTTPUploadBeforeCreatePostStream(req)
  note(req, "create", req.path)
  if req:header("x-refuse") == "yes" then return false end
  if req:header("x-refuse") == "error" then error("refused by a bug") end
end

function OnHTTPUploadReadInput(req, name, value)
  note(req, "input", name, value)
end

function OnHTTPUploadBeforeSaveFile(req, field, filename)
  note(req, "before", field, filename)
  moonwire.sleep(0)  -- the events may wait
  if field == "skip" then return false end
  if field == "custom" then return "custom/" .. filename end
  if field == "escape" then return "../outside.txt" end
end

function OnHTTPUploadAfterSaveFile(req, field, path, size)
  note(req, "after", field, path, tostring(size))
end

local function describe(req)
  local files = {}
  for i, f in ipairs(req.files) do
    local content
    if f.size < 4096 then
      local handle = assert(io.open(f.path, "rb"))
      content = handle:read("a")
      handle:close()
    end
    files[i] = {field = f.field, filename = f.filename, path = f.path, size = f.size,
                content_type = f.content_type, content = content}
  end
  return {form = req.form, files = files, events = req.events or {}}
end

moonwire.post("/upload", function(req, res) res:json(describe(req)) end)

-- Keeps a file by moving it out of the upload folder.
moonwire.post("/keep", function(req, res)
  local f = req.files[1]
  local target = "kept-" .. f.filename
  assert(os.rename(f.path, target))
  res:json({kept = target})
end)

moonwire.get("/alive", function(req, res) res:send("alive") end)
