# Latency percentiles against request rate, pod-hardener and the floor
# server, from the CSV of `loadgen run --modes sweep --csv FILE`.
#
#   gnuplot -e "data='docs/latency-vs-rate.csv'; out='docs/latency-vs-rate.png'" docs/plot-latency.gp
#
# Columns: 1 mode, 2 pod, 3 conns, 4 target_rate, 5 server, 6 rps,
# 7 p50_ms, 8 p95_ms, 9 p99_ms, 10 max_ms, 11 errors, ...

if (!exists("data")) data = 'docs/latency-vs-rate.csv'
if (!exists("out")) out = 'docs/latency-vs-rate.png'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1000,620 font "DejaVu Sans,11"
set output out
set datafile separator ","
set datafile missing NaN
set key top left box opaque
set grid xtics ytics mytics
set logscale y
set format y "%g"
set xlabel "offered load (reviews/s, open loop, 8 keep-alive HTTPS connections)"
set ylabel "latency from intended send time (ms, log scale)"
set title "pod-hardener /mutate vs the floor server: latency percentiles against rate\n{/*0.85 ".subtitle."}"
set xrange [0:*]
set offsets 0, graph 0.04, 0, 0
set yrange [0.1:*]

# The issue's p99 target.
set arrow 1 from graph 0, first 5 to graph 1, first 5 nohead dt 3 lw 1.5 lc rgb "#555555"
set label 1 "p99 target: 5 ms" at graph 0.01, first 5.6 left textcolor rgb "#555555"

# Rows of other modes and servers are undefined; smooth unique skips them
# and joins the rest in rate order.
sel(srv, col) = (strcol(1) eq "sweep" && strcol(5) eq srv) ? column(col) : NaN

plot \
  data skip 1 using 4:(sel("ours", 7))  with linespoints lw 2 pt 7  lc rgb "#1f77b4" title "ours p50", \
  data skip 1 using 4:(sel("ours", 8))  with linespoints lw 2 pt 5  lc rgb "#ff7f0e" title "ours p95", \
  data skip 1 using 4:(sel("ours", 9))  with linespoints lw 2 pt 9  lc rgb "#d62728" title "ours p99", \
  data skip 1 using 4:(sel("floor", 7)) with linespoints lw 1.5 dt 2 pt 6  lc rgb "#1f77b4" title "floor p50", \
  data skip 1 using 4:(sel("floor", 8)) with linespoints lw 1.5 dt 2 pt 4  lc rgb "#ff7f0e" title "floor p95", \
  data skip 1 using 4:(sel("floor", 9)) with linespoints lw 1.5 dt 2 pt 8  lc rgb "#d62728" title "floor p99"
