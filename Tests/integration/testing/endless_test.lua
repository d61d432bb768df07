-- A test whose own code never ends: stopped by the runner's time budget (--timeout).
function test_endless(t)
  while true do end
end

function test_after(t)
  t.eq(t.get("/hello").status, 200)
end
