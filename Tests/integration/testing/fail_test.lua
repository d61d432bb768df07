-- One failing test per assertion, and the failures the runner reports with the server's log
-- (test_testing_harness.py checks the lines named here).
function test_eq_fails(t)
  t.eq({ a = 1, b = { 2 } }, { a = 1, b = { 3 } })
end

function test_ok_fails(t)
  t.ok(nil, "the user exists")
end

function test_match_fails(t)
  t.match("hello", [[^bye]])
end

function test_raises_fails(t)
  t.raises(function() end, "boom")
end

function test_raises_wrong_error(t)
  t.raises(function() error("other") end, "boom")
end

function test_lua_error(t)
  local missing = nil
  return missing.field
end

function test_handler_error(t)
  t.eq(t.get("/error").status, 200)
end

function test_endless_handler(t)
  t.eq(t.get("/loop").status, 200)
end

function test_passes(t)
  t.eq(1, 1)
end
