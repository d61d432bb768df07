-- 1,000 requests through the whole path, timed by the runner.
function test_thousand_gets(t)
  for _ = 1, 1000 do
    local r = t.get("/hello")
    if r.status ~= 200 then t.eq(r.status, 200) end
  end
end
