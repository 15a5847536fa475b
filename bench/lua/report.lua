-- Appended to every scenario script by bench/run.py: done() prints one JSON line that the
-- harness parses (more robust than reading wrk's text). Times are in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"%s":%.0f', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,'
      .. '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},'
      .. '"latency_us":{"min":%.0f,"max":%.0f,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    summary.requests > 0 and latency.min or 0, latency.max, latency.mean, latency.stdev,
    table.concat(pct, ",")))
end
