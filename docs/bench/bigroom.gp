# Chart of bigroom.tsv (written by bigroom.sh): p99 latency and deliveries
# per server CPU-second against room size, one line per server and rate.
# gnuplot -e "datafile='bigroom.tsv'; outfile='bigroom.png'" bigroom.gp
set terminal pngcairo size 1300,560 font ",11" noenhanced
set output outfile
set datafile separator "\t"
set key top left
set grid
set logscale x
set xlabel "users in the room (10 senders)"
set xrange [35:30000]
set multiplot layout 1,2 title "big rooms, open loop: netchat before/after issue 14, ngIRCd (one 2-vCPU VM, loopback)"
rows(s, r) = sprintf("< awk -F'\t' '$1==\"%s\" && $3==\"%s\"' %s", s, r, datafile)
set title "p99 latency (ms, log)"
set logscale y
plot for [r in "1 5 10"] rows("after", r) using 2:7 with linespoints lw 2 pt 7 title "after, ".r."/s", \
     for [r in "1 5 10"] rows("before", r) using 2:7 with linespoints lw 1 dt 2 pt 6 title "before, ".r."/s", \
     for [r in "1 5 10"] rows("ngircd", r) using 2:7 with linespoints lw 1 dt 3 pt 4 title "ngIRCd, ".r."/s"
unset logscale y
set title "deliveries per server CPU-second"
set format y "%.1s%c"
plot for [r in "1 5 10"] rows("after", r) using 2:5 with linespoints lw 2 pt 7 title "after, ".r."/s", \
     for [r in "1 5 10"] rows("before", r) using 2:5 with linespoints lw 1 dt 2 pt 6 title "before, ".r."/s", \
     for [r in "1 5 10"] rows("ngircd", r) using 2:5 with linespoints lw 1 dt 3 pt 4 title "ngIRCd, ".r."/s"
unset multiplot
