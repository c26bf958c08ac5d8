# bench/floor/plot.gp: docs/floor.svg from a run's data (written by
# floor.py: one block per row, "N PSS_MiB", then the dashed extrapolated
# continuations of rows 2 and 3). Variables: datafile, outfile, plottitle,
# haserl (0 when Erlang was not installed: its block is empty), procmax,
# bign (the largest N of row 1 when BENCH_FLOOR_BIG ran, else 0).
set terminal svg size 900,640 dynamic enhanced font "sans,13" background rgb "white"
set output outfile
set title plottitle font "sans,13"
set logscale xy
set xlabel "idle workers (N)"
set ylabel "total PSS, MiB (all processes of the configuration)"
set format y "%g"
set format x "%g"
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key outside below center box maxrows 4 width -2 spacing 1.1
set bmargin 8
set xrange [0.7:*]
set yrange [0.2:*]
set style line 1 lc rgb "#1b7837" lw 2.5 pt 7 ps 1.1
set style line 2 lc rgb "#5aae61" lw 2 pt 5 ps 1
set style line 3 lc rgb "#c51b7d" lw 2 pt 9 ps 1.1
set style line 4 lc rgb "#2166ac" lw 2 pt 11 ps 1.1
set style line 5 lc rgb "#e08214" lw 2 pt 13 ps 1.1
set style line 12 lc rgb "#5aae61" lw 2 dt 2 pt 4 ps 1
set style line 13 lc rgb "#c51b7d" lw 2 dt 2 pt 8 ps 1.1
plot datafile index 0 using 1:2 with linespoints ls 1 title (bign > 0 ? sprintf("1: one herdd, N archive workers (to %d)", bign) : "1: one herdd, N archive workers"), \
     datafile index 1 using 1:2 with linespoints ls 2 title "2: N herdd processes", \
     datafile index 2 using 1:2 with linespoints ls 3 title "3: N python3 processes (asyncio)", \
     datafile index 3 using 1:2 with linespoints ls 4 title "4: one python3, N asyncio tasks", \
     datafile index 4 using 1:2 with linespoints ls 5 title (haserl ? "5: one Erlang VM, N gen\\_servers" : "5: Erlang not installed"), \
     datafile index 5 using 1:2 with linespoints ls 12 title sprintf("2, extrapolated past N = %d", procmax), \
     datafile index 6 using 1:2 with linespoints ls 13 title sprintf("3, extrapolated past N = %d", procmax)
