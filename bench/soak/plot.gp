# bench/soak/plot.gp: docs/soak.svg from a soak run (written by soak.py:
# one line a second, "minutes RSS_MiB PSS_MiB USS_MiB kevents_per_s").
# Variables: datafile, outfile, plottitle, early and late (minutes: the two
# points whose RSS medians are compared, shaded +-5 s and the last 10 s).
set terminal svg size 900,560 dynamic enhanced font "sans,13" background rgb "white"
set output outfile
set title plottitle font "sans,12"
set xlabel "minutes"
set ylabel "herdd memory, MiB"
set y2label "events published, thousands a second"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid xtics ytics lc rgb "#dddddd"
set key outside below center horizontal box
set object 1 rect from early - 5.0 / 60, graph 0 to early + 5.0 / 60, graph 1 fc rgb "#fee8c8" fs solid 0.6 noborder behind
set object 2 rect from late - 10.0 / 60, graph 0 to late, graph 1 fc rgb "#fee8c8" fs solid 0.6 noborder behind
plot datafile using 1:5 axes x1y2 with lines lc rgb "#bbbbbb" lw 1 title "events/s (right)", \
     datafile using 1:2 with lines lc rgb "#1b7837" lw 2.5 title "RSS", \
     datafile using 1:3 with lines lc rgb "#2166ac" lw 2 title "PSS", \
     datafile using 1:4 with lines lc rgb "#c51b7d" lw 2 title "USS (private)"
