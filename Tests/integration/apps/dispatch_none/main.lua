-- No request handler at all: GET/HEAD fall through to the static files, other methods get 404.
function OnBeforeCommand(req, res)
  res:header("X-Before", "none-app")
end
