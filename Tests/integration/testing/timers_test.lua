-- Timers on the test clock, in a file of their own: the clock (like moonwire.shared and the
-- sessions) is the file's, and pass_test.lua moves it by hours.
function test_timers_follow_the_clock(t)
  t.eq(t.get("/clock").json, { ticks = 0, fired = false })
  t.advance(10)
  t.eq(t.get("/clock").json, { ticks = 1, fired = false })
  t.advance(50)
  t.eq(t.get("/clock").json, { ticks = 2, fired = true })
end
