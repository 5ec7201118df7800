# Chart of fanout.tsv (written by fanout.sh): deliveries/s and deliveries
# per server CPU-second against room size, one line per server.
# gnuplot -e "datafile='fanout.tsv'; outfile='fanout.png'" chart.gp
set terminal pngcairo size 1200,520 font ",11" noenhanced
set output outfile
set datafile separator "\t"
set key top right
set grid
set logscale x
set xlabel "clients in the room (10 senders, closed loop)"
set format y "%.1s%c"
set multiplot layout 1,2 title "netchat vs reference peers, fan-out on one 2-vCPU VM (medians)"
servers = "netchat ngircd ncat node"
set title "deliveries per second"
set xrange [35:1400]
rows(s) = sprintf("< awk -F'\t' '$1==\"%s\"' %s", s, datafile)
plot for [s in servers] rows(s) using 2:3 with linespoints lw 2 pt 7 title s
set title "deliveries per server CPU-second"
plot for [s in servers] rows(s) using 2:4 with linespoints lw 2 pt 7 title s
unset multiplot
